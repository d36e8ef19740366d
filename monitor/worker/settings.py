"""Stream-worker configuration, from flags and ``AIFM_*`` environment variables.

Every setting has a flag and an environment variable (flag wins). Invalid settings
fail at start with :class:`SettingsError` naming the setting and what is allowed,
never at the first event.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from monitor.embeddings.encoder import DEFAULT_ENCODER, ENCODERS

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class SettingsError(ValueError):
    """A worker setting is invalid."""


@dataclass
class WorkerSettings:
    bootstrap_servers: str = "127.0.0.1:9092"
    topics: list[str] = field(default_factory=lambda: ["ai.events"])
    # The OpenTelemetry Collector kafka exporter's default topics ("none": no such topic).
    otlp_spans_topics: list[str] = field(default_factory=lambda: ["otlp_spans"])
    otlp_logs_topics: list[str] = field(default_factory=lambda: ["otlp_logs"])
    alerts_topic: str = "ai.alerts"
    dlq_topic: str = "ai.events.dlq"
    group_id: str = "aifm"
    partitions: int = 4
    thresholds: str | None = None
    boundaries: str | None = None
    metrics_bind: str = "127.0.0.1"
    metrics_port: int = 9108
    snapshot_seconds: float = 10.0
    embeddings: str = "precomputed"
    embedding_share: float = 0.10
    encoder: str = DEFAULT_ENCODER
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    def state_topic(self, source: str) -> str:
        """The compacted topic holding this group's detector snapshots of ``source``, partition for partition.

        One per consumer group: a second group reading the same topic (another
        deployment, or a fresh group id to reprocess from the start) keeps its own
        state instead of restoring this one's and skipping the records it covers.
        """
        return f"{source}.aifm-state.{self.group_id}"

    @property
    def sources(self) -> list[str]:
        """Every topic the worker consumes: its own JSON topics, then the OTLP span and log topics."""
        return [*self.topics, *self.otlp_spans_topics, *self.otlp_logs_topics]

    def source_formats(self) -> dict[str, str]:
        """What each source topic holds: "aifm" (JSON events, OTLP/JSON recognised by content), "spans" or "logs" (OTLP)."""
        return {**{t: "aifm" for t in self.topics}, **{t: "spans" for t in self.otlp_spans_topics}, **{t: "logs" for t in self.otlp_logs_topics}}

    @property
    def broker_url(self) -> str:
        return ";".join(f"kafka://{server}" for server in self.bootstrap_servers.split(","))

    def validate(self) -> WorkerSettings:
        servers = [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]
        if not servers or any(not re.match(r"^[^:\s]+:\d{1,5}$", s) for s in servers):
            raise SettingsError(f"bootstrap servers: expected host:port[,host:port...], got {self.bootstrap_servers!r}")
        for name in [*self.sources, self.alerts_topic, self.dlq_topic]:
            if not _TOPIC.match(name):
                raise SettingsError(f"topic {name!r}: Kafka topic names use letters, digits, '.', '_' and '-' (1-249 characters)")
        if not self.sources:
            raise SettingsError("topics: at least one source topic is needed (--topics, --otlp-spans-topics or --otlp-logs-topics)")
        if (self.otlp_spans_topics or self.otlp_logs_topics) and not self.topics:
            raise SettingsError("topics: OTLP topics need a JSON topic (--topics) that their events are re-keyed to, by model or agent")
        if len(set(self.sources)) != len(self.sources):
            raise SettingsError("topics: a topic is named twice among --topics, --otlp-spans-topics and --otlp-logs-topics")
        if set(self.sources) & {self.alerts_topic, self.dlq_topic}:
            raise SettingsError("topics: the alerts and dead-letter topics cannot also be source topics")
        if not re.match(r"^[A-Za-z0-9._-]+$", self.group_id):
            raise SettingsError(f"group id: letters, digits, '.', '_' and '-' only, got {self.group_id!r}")
        for state_topic in map(self.state_topic, self.sources):
            if len(state_topic) > 249:
                raise SettingsError(f"state topic {state_topic!r}: over Kafka's 249 characters; shorten the group id or the topic name")
        if not 1 <= self.partitions <= 1024:
            raise SettingsError(f"partitions: must lie in [1, 1024], got {self.partitions}")
        if not 0 <= self.metrics_port <= 65535:
            raise SettingsError(f"metrics port: must lie in [0, 65535], got {self.metrics_port}")
        if self.embeddings not in EMBEDDING_MODES:
            raise SettingsError(f"embeddings: must be one of {', '.join(EMBEDDING_MODES)}, got {self.embeddings!r}")
        if not 0 < self.embedding_share < 1:
            raise SettingsError(f"embedding share: must lie in (0, 1), got {self.embedding_share}")
        if self.encoder not in ENCODERS:
            raise SettingsError(f"encoder: must be one of {', '.join(ENCODERS)}, got {self.encoder!r}")
        if not self.snapshot_seconds > 0:
            raise SettingsError(f"snapshot seconds: must be > 0, got {self.snapshot_seconds}")
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise SettingsError(f"security protocol: one of {', '.join(SECURITY_PROTOCOLS)}, got {self.security_protocol!r}")
        if self.security_protocol.startswith("SASL"):
            if self.sasl_mechanism not in SASL_MECHANISMS:
                raise SettingsError(f"SASL mechanism: one of {', '.join(SASL_MECHANISMS)}, got {self.sasl_mechanism!r}")
            if not self.sasl_username or not self.sasl_password:
                raise SettingsError("SASL: AIFM_SASL_USERNAME and AIFM_SASL_PASSWORD are required with a SASL protocol")
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            value = getattr(self, name)
            if value is not None and not Path(value).is_file():
                raise SettingsError(f"{name.replace('_', ' ')}: {value} is not a readable file")
        if self.boundaries is not None and not Path(self.boundaries).is_dir():
            raise SettingsError(f"boundaries: {self.boundaries} is not a directory")
        return self


EMBEDDING_MODES = ("precomputed", "sample")

#: setting -> (flag, environment variable, type, help)
_OPTIONS = {
    "bootstrap_servers": ("--bootstrap-servers", "AIFM_BOOTSTRAP_SERVERS", str, "Kafka brokers, host:port[,host:port]"),
    "topics": ("--topics", "AIFM_TOPICS", "list", "comma-separated source topics of aifm JSON events"),
    "otlp_spans_topics": ("--otlp-spans-topics", "AIFM_OTLP_SPANS_TOPICS", "list", "topics of OTLP trace requests, as the Collector's kafka exporter writes them (none: no such topic)"),
    "otlp_logs_topics": ("--otlp-logs-topics", "AIFM_OTLP_LOGS_TOPICS", "list", "topics of OTLP log requests (GenAI content events; none: no such topic)"),
    "alerts_topic": ("--alerts-topic", "AIFM_ALERTS_TOPIC", str, "topic findings are published to (key: alert_id)"),
    "dlq_topic": ("--dlq-topic", "AIFM_DLQ_TOPIC", str, "dead-letter topic for rejected records"),
    "group_id": ("--group-id", "AIFM_GROUP_ID", str, "Kafka consumer group (and faust app id)"),
    "partitions": ("--partitions", "AIFM_PARTITIONS", int, "partitions of topics the worker creates"),
    "thresholds": ("--thresholds", "AIFM_THRESHOLDS", str, "thresholds file (default alerts/thresholds.yaml)"),
    "boundaries": ("--boundaries", "AIFM_BOUNDARIES", str, "directory of per-agent tool boundary files"),
    "metrics_bind": ("--metrics-bind", "AIFM_METRICS_BIND", str, "address the /metrics endpoint binds to"),
    "metrics_port": ("--metrics-port", "AIFM_METRICS_PORT", int, "port of the /metrics endpoint (0: none)"),
    "snapshot_seconds": ("--snapshot-seconds", "AIFM_SNAPSHOT_SECONDS", float, "seconds between detector-state snapshots"),
    "embeddings": ("--embeddings", "AIFM_EMBEDDINGS", str, "precomputed (use the embeddings events carry) or sample (also embed a budgeted sample of outputs)"),
    "embedding_share": ("--embedding-share", "AIFM_EMBEDDING_SHARE", float, "largest share of the worker's time spent encoding (sample mode)"),
    "encoder": ("--encoder", "AIFM_ENCODER", str, f"sentence encoder in sample mode: {' or '.join(ENCODERS)} (bench/bench_encoders.py)"),
    "security_protocol": ("--security-protocol", "AIFM_SECURITY_PROTOCOL", str, "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
    "sasl_mechanism": ("--sasl-mechanism", "AIFM_SASL_MECHANISM", str, "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
    "sasl_username": ("--sasl-username", "AIFM_SASL_USERNAME", str, "SASL user"),
    "sasl_password": ("--sasl-password", "AIFM_SASL_PASSWORD", str, "SASL password (prefer the environment variable)"),
    "ssl_cafile": ("--ssl-cafile", "AIFM_SSL_CAFILE", str, "CA bundle for TLS"),
    "ssl_certfile": ("--ssl-certfile", "AIFM_SSL_CERTFILE", str, "client certificate for TLS"),
    "ssl_keyfile": ("--ssl-keyfile", "AIFM_SSL_KEYFILE", str, "client key for TLS"),
}


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    for name, (flag, env, _, help_text) in _OPTIONS.items():
        parser.add_argument(flag, dest=name, default=None, help=f"{help_text} [{env}]")


def _convert(name: str, raw: str, kind) -> object:
    if kind == "list":
        parts = [part.strip() for part in raw.split(",") if part.strip()]
        return [] if parts == ["none"] else parts
    try:
        return kind(raw)
    except ValueError:
        raise SettingsError(f"{_OPTIONS[name][0]} / {_OPTIONS[name][1]}: expected {kind.__name__}, got {raw!r}") from None


def settings_from(args: argparse.Namespace | None = None, environ: dict | None = None) -> WorkerSettings:
    """Settings from flags, then ``AIFM_*`` variables, then defaults; validated."""
    environ = os.environ if environ is None else environ
    values = {}
    for name, (_, env, kind, _) in _OPTIONS.items():
        raw = getattr(args, name, None) if args is not None else None
        if raw is None:
            raw = environ.get(env)
        if raw is not None and raw != "":
            values[name] = _convert(name, raw, kind) if isinstance(raw, str) else raw
    return WorkerSettings(**values).validate()
