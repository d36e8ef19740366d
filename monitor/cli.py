"""The ``aifm`` command line."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from monitor import __version__
from monitor.cli_format import format_finding
from monitor.embeddings.encoder import DEFAULT_ENCODER, ENCODERS, EncoderUnavailable
from monitor.replay.reader import ReplayError
from monitor.replay.scoring import IncidentsError
from monitor.signals import SIGNALS
from monitor.signals.tool_scope import BoundariesError, load_boundaries
from monitor.thresholds import ThresholdsError, default_thresholds_path, load_thresholds
from monitor.worker.settings import SettingsError, add_worker_arguments, settings_from

EXIT_USAGE = 2


def _add_pipeline_options(parser: argparse.ArgumentParser, *, embed_default: str = "auto") -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="JSONL or .jsonl.gz logs, or directories of them")
    parser.add_argument("--thresholds", metavar="FILE", help=f"thresholds file (default: $AIFM_THRESHOLDS or {default_thresholds_path()})")
    parser.add_argument("--boundaries", metavar="DIR", help="directory of per-agent tool boundary YAML files")
    default_help = "auto: all when the embeddings extra is installed, else off" if embed_default == "auto" else embed_default
    parser.add_argument(
        "--embed",
        default=embed_default,
        metavar="all|off|FRACTION",
        help="which outputs without a precomputed embedding to embed (with --encoder) for embedding drift: all, off, or a fraction "
        f"in (0, 1] chosen by event id, the same on every run (default {default_help})",
    )
    parser.add_argument(
        "--encoder",
        choices=ENCODERS,
        default=os.environ.get("AIFM_ENCODER", DEFAULT_ENCODER),
        help=f"sentence encoder for --embed [AIFM_ENCODER; default {DEFAULT_ENCODER}]: static (distilled from MiniLM, ~250x faster), "
        "minilm, or minilm-int8 (MiniLM quantised, on onnxruntime)",
    )
    kafka = parser.add_argument_group("history from Kafka (read without a consumer group; SASL/TLS from AIFM_* variables)")
    kafka.add_argument("--from-kafka", metavar="TOPIC", help="replay TOPIC from its start (or --start-offset / --start-time) to its current end")
    kafka.add_argument(
        "--format",
        choices=("aifm", "otlp_spans", "otlp_logs"),
        default=None,
        help="what TOPIC holds: aifm JSON events, or OTLP spans or logs as the Collector's kafka exporter writes them "
        "(protobuf or JSON; default: by name, otlp_spans and otlp_logs are OTLP, other topics aifm)",
    )
    kafka.add_argument("--bootstrap-servers", default=None, help="brokers [AIFM_BOOTSTRAP_SERVERS]")
    start = kafka.add_mutually_exclusive_group()
    start.add_argument("--start-offset", type=int, default=None, help="start every partition at this offset")
    start.add_argument("--start-time", default=None, help="start at the first record at or after this RFC 3339 time or epoch seconds")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aifm", description="ai-failure-monitor: streaming monitor for the failure modes of production AI systems.")
    parser.add_argument("--version", action="version", version=f"aifm {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    replay = commands.add_parser("replay", help="run historical logs through the pipeline and write findings")
    _add_pipeline_options(replay)
    replay.add_argument("--out", metavar="FINDINGS.jsonl", help="write findings (and model-version annotations) as JSONL")
    replay.add_argument("--rejects", metavar="FILE", help="write rejected records with reasons (default: FINDINGS.rejects.jsonl next to --out)")
    replay.add_argument("--incidents", metavar="INCIDENTS.jsonl", help="score findings against labelled incidents")
    replay.add_argument("--show-findings", action="store_true", help="print every finding, one line each")
    replay.add_argument("--report", metavar="DIR", help="write an HTML report with plots of every detector's input, findings and incidents")

    tune = commands.add_parser("tune", help="replay history, sweep each detector's threshold, write tuned thresholds with their evidence")
    _add_pipeline_options(tune)
    tune.add_argument("--incidents", metavar="INCIDENTS.jsonl", help="labelled incidents; without them the history is assumed clean")
    tune.add_argument("--false-alarms-per-day", type=float, required=True, metavar="N", help="false-alarm budget per signal and day")
    tune.add_argument("--margin", type=float, default=2.0, help="choose h whose measured false alarms are within budget / margin (default 2), then one grid step safer")
    tune.add_argument("--signals", metavar="A,B", help="tune only these signals (default: every signal with a detector)")
    tune.add_argument("--out", metavar="THRESHOLDS.yaml", required=True, help="where to write the tuned thresholds (may be the input file)")
    tune.add_argument("--report", metavar="DIR", help="write an HTML report: streams, alarms, trade-off curves, what changed")

    signals = commands.add_parser("signals", help="write the per-event signals of a log, one line per accepted event")
    _add_pipeline_options(signals, embed_default="off")  # per-event text proxies: drift is a property of the stream
    signals.add_argument("--out", metavar="SIGNALS.jsonl", required=True)

    simulate = commands.add_parser("simulate", help="write simulated traffic with labelled incidents")
    simulate.add_argument("--out", metavar="DIR", required=True, help="directory for events.jsonl.gz, incidents.jsonl, boundaries/")
    simulate.add_argument("--events", type=int, default=44_000, help="number of events (default 44000)")
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument("--bad-lines", type=int, default=0, help="malformed lines to mix in (exercises rejects)")
    simulate.add_argument("--clean", action="store_true", help="no injected incidents: clean history of the same shape (for calibration)")

    commands.add_parser("list-signals", help="print the signal vocabulary and what each proxies")

    encoder = commands.add_parser("encoder", help="build the static or int8 encoder from the local MiniLM weights (nothing downloaded)")
    encoder.add_argument("action", choices=("build",))
    encoder.add_argument("--encoder", choices=("static", "minilm-int8"), default="static", help="which to build (default static)")
    encoder.add_argument("--dir", default=None, help="where to write it (default: a folder of its own under $AIFM_ENCODER_DIR or ~/.cache/aifm)")
    encoder.add_argument("--force", action="store_true", help="build again even if a built encoder is there")

    rules = commands.add_parser("rules", help="generate Prometheus rules, their promtool tests and the runbook's thresholds from thresholds.yaml")
    rules.add_argument("--thresholds", metavar="FILE", help=f"thresholds file (default: $AIFM_THRESHOLDS or {default_thresholds_path()})")
    rules.add_argument("--out-dir", metavar="DIR", help="where rules.yml, tests/ and RUNBOOK.md go (default: the thresholds file's directory)")
    rules.add_argument("--check", action="store_true", help="write nothing; exit 1 if any generated file is stale")

    dashboards = commands.add_parser("dashboards", help="generate the Grafana dashboards' JSON from dashboards/*.dashboard.py")
    dashboards.add_argument("--thresholds", metavar="FILE", help="thresholds file whose limits the panels draw (default as for rules)")
    dashboards.add_argument("--out-dir", metavar="DIR", help="where the JSON goes (default: next to the sources)")
    dashboards.add_argument("--check", action="store_true", help="write nothing; exit 1 if any committed JSON is stale")

    worker = commands.add_parser("worker", help="run the stream worker against Kafka (flags or AIFM_* variables)")
    add_worker_arguments(worker)
    worker.add_argument("--loglevel", default="info", choices=("crit", "error", "warn", "info", "debug"))

    demo = commands.add_parser("demo", help="live demo: embedded broker, worker, simulated traffic with incidents, findings as they fire")
    demo.add_argument("--bootstrap-servers", default=None, help="use this Kafka instead of starting the embedded broker")
    demo.add_argument("--events", type=int, default=44_000, help="simulated events to stream (default 44000)")
    demo.add_argument("--rate", type=float, default=4000.0, help="events per second (default 4000)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--metrics-port", type=int, default=9108, help="/metrics port on 127.0.0.1 (0: any free port)")
    demo.add_argument("--exit-when-done", action="store_true", help="stop once the simulated stream is processed and scored")
    demo.add_argument("--otel", action="store_true", help="send model and tool calls as OTLP spans, as an instrumented app through the Collector would")
    return parser


def _load(args):
    thresholds = load_thresholds(args.thresholds)
    boundaries = load_boundaries(args.boundaries)
    return thresholds, boundaries


def _embedder(args, thresholds):
    """The embedder ``--embed`` asks for (None: off), and the thresholds to run with it (its encoder's drift detector)."""
    from monitor.embeddings.embedder import replay_embedder

    embedder = replay_embedder(args.embed, thresholds, args.encoder)
    return embedder, (thresholds.for_encoder(args.encoder) if embedder is not None else thresholds)


def _history(args, stack: contextlib.ExitStack) -> list:
    """The Kafka partitions named by --from-kafka, as replay sources (none without it)."""
    if not args.paths and not args.from_kafka:
        raise ValueError("give log paths, --from-kafka TOPIC, or both")
    if not args.from_kafka:
        return []
    from monitor.events import parse_ts
    from monitor.replay.kafka_source import KafkaHistory

    start_time = None
    if args.start_time is not None:
        raw = args.start_time
        start_time = parse_ts(float(raw) if raw.replace(".", "", 1).isdigit() else raw)
    history = stack.enter_context(KafkaHistory(settings_from(args), args.from_kafka, start_offset=args.start_offset, start_time=start_time))
    source_format = {"otlp_spans": "spans", "otlp_logs": "logs", "aifm": "aifm"}[args.format or _format_by_name(args.from_kafka)]
    return [(name, records, source_format) for name, records in history.sources()]


def _format_by_name(topic: str) -> str:
    return topic if topic in ("otlp_spans", "otlp_logs") else "aifm"


def _cmd_replay(args) -> int:
    from monitor.replay.run import format_summary, replay, write_rejects
    from monitor.replay.scoring import load_incidents, score

    thresholds, boundaries = _load(args)
    incidents = load_incidents(args.incidents) if args.incidents else None
    embedder, thresholds = _embedder(args, thresholds)
    with contextlib.ExitStack() as stack:
        sources = _history(args, stack)
        findings_out = stack.enter_context(open(args.out, "wb")) if args.out else None
        if args.report:  # the same replay, also recording each detector's input for the plots
            from monitor.tuning.history import record_history

            history = record_history(args.paths, thresholds=thresholds, boundaries=boundaries, findings_out=findings_out, sources=sources, embedder=embedder)
            report = history.report
        else:
            report = replay(args.paths, thresholds=thresholds, boundaries=boundaries, findings_out=findings_out, sources=sources, embedder=embedder)
    if args.show_findings:
        for finding in report.findings:
            print(format_finding(finding))
        print()
    print(format_summary(report))
    if report.rejected:
        rejects_path = args.rejects or (f"{args.out}.rejects.jsonl" if args.out else "aifm-replay.rejects.jsonl")
        with open(rejects_path, "wb") as handle:
            write_rejects(report.rejected, handle)
        print(f"rejected records kept in {rejects_path}")
    if args.out:
        print(f"findings written to {args.out}")
    if incidents is not None:
        print(score(report.findings, incidents).format())
    if args.report:
        from monitor.tuning.report import write_report

        page = write_report(Path(args.report), history, incidents=incidents or [], title="aifm replay report")
        print(f"report written to {page}")
    return 0


def _cmd_tune(args) -> int:
    from monitor.replay.scoring import load_incidents
    from monitor.tuning.report import write_report
    from monitor.tuning.run import format_outcome, tune

    thresholds_path = Path(args.thresholds) if args.thresholds else default_thresholds_path()
    thresholds = load_thresholds(thresholds_path)
    boundaries = load_boundaries(args.boundaries)
    incidents = load_incidents(args.incidents) if args.incidents else []
    signals = [name.strip() for name in args.signals.split(",")] if args.signals else None
    embedder, thresholds = _embedder(args, thresholds)
    with contextlib.ExitStack() as stack:
        outcome = tune(
            args.paths,
            thresholds=thresholds,
            thresholds_text=thresholds_path.read_text(encoding="utf-8"),
            boundaries=boundaries,
            incidents=incidents,
            budget_per_day=args.false_alarms_per_day,
            margin=args.margin,
            signals=signals,
            sources=_history(args, stack),
            embedder=embedder,
            encoder=args.encoder,
        )
    print(format_outcome(outcome))
    Path(args.out).write_text(outcome.text, encoding="utf-8")
    print(f"tuned thresholds written to {args.out} (then: aifm rules --thresholds {args.out}; aifm dashboards --thresholds {args.out})")
    if args.report:
        page = write_report(Path(args.report), outcome.history, incidents=incidents, tunings=outcome.tunings, title="aifm tune report")
        print(f"report written to {page}")
    return 0


def _cmd_signals(args) -> int:
    from monitor.replay.run import format_summary, replay, write_rejects

    thresholds, boundaries = _load(args)
    embedder, thresholds = _embedder(args, thresholds)
    with contextlib.ExitStack() as stack:
        sources = _history(args, stack)
        signals_out = stack.enter_context(open(args.out, "wb"))
        report = replay(args.paths, thresholds=thresholds, boundaries=boundaries, signals_out=signals_out, sources=sources, embedder=embedder)
    print(format_summary(report))
    if report.rejected:
        rejects_path = f"{args.out}.rejects.jsonl"
        with open(rejects_path, "wb") as handle:
            write_rejects(report.rejected, handle)
        print(f"rejected records kept in {rejects_path}")
    print(f"signals written to {args.out}")
    return 0


def _cmd_simulate(args) -> int:
    from monitor.replay.simulate import write_simulation

    summary = write_simulation(args.out, args.events, seed=args.seed, bad_lines=args.bad_lines, incidents=not args.clean)
    out = Path(summary["dir"])
    print(f"wrote {summary['events']:,} events ({summary['bad_lines']} malformed lines) to {out / 'events.jsonl.gz'}")
    print(f"wrote {summary['incidents']} labelled incidents to {out / 'incidents.jsonl'} and tool boundaries to {out / 'boundaries'}")
    return 0


def _cmd_list_signals(args) -> int:
    for name, description in SIGNALS.items():
        print(f"{name:14} {description}")
    return 0


def _write_or_check(command: str, files: dict, check: bool) -> int:
    from monitor.alerting.generate import stale_files, write_files

    if check:
        stale = stale_files(files)
        for path in stale:
            print(f"stale: {path} (run `aifm {command}`)", file=sys.stderr)
        if not stale:
            print(f"{len(files)} generated files up to date")
        return 1 if stale else 0
    written = write_files(files)
    for path in files:
        print(f"{'wrote' if path in written else 'unchanged'} {path}")
    return 0


def _cmd_rules(args) -> int:
    from monitor.alerting.generate import generated_files

    thresholds_path = Path(args.thresholds) if args.thresholds else default_thresholds_path()
    thresholds = load_thresholds(thresholds_path)
    out_dir = Path(args.out_dir) if args.out_dir else thresholds_path.resolve().parent
    return _write_or_check("rules", generated_files(thresholds, out_dir), args.check)


def _cmd_dashboards(args) -> int:
    from monitor.dashboards.generate import generated_files

    thresholds = load_thresholds(args.thresholds)
    out_dir = Path(args.out_dir) if args.out_dir else None
    return _write_or_check("dashboards", generated_files(thresholds, out_dir=out_dir), args.check)


def _cmd_demo(args) -> int:
    from monitor.worker.demo import run_demo

    return run_demo(
        bootstrap_servers=args.bootstrap_servers,
        events=args.events,
        rate=args.rate,
        seed=args.seed,
        metrics_port=args.metrics_port,
        exit_when_done=args.exit_when_done,
        out=sys.stdout,
        otel=args.otel,
    )


def _cmd_encoder(args) -> int:
    if args.encoder == "static":
        from monitor.embeddings.static import build_static_model as build
        from monitor.embeddings.static import built, default_directory
    else:
        from monitor.embeddings.onnx_int8 import build_int8_model as build
        from monitor.embeddings.onnx_int8 import built, default_directory

    directory = Path(args.dir) if args.dir else default_directory()
    if built(directory) and not args.force:
        print(f"{args.encoder} encoder already built in {directory} (--force to build it again)")
        return 0
    build(directory)
    print(f"{args.encoder} encoder built in {directory}")
    return 0


def _cmd_worker(args) -> int:
    from monitor.worker.run import run_worker

    run_worker(settings_from(args), loglevel=args.loglevel)
    return 0


COMMANDS = {
    "replay": _cmd_replay,
    "signals": _cmd_signals,
    "simulate": _cmd_simulate,
    "list-signals": _cmd_list_signals,
    "tune": _cmd_tune,
    "rules": _cmd_rules,
    "dashboards": _cmd_dashboards,
    "worker": _cmd_worker,
    "demo": _cmd_demo,
    "encoder": _cmd_encoder,
}


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ThresholdsError, BoundariesError, ReplayError, IncidentsError, SettingsError, EncoderUnavailable, ValueError) as error:
        print(f"aifm {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:
        print(f"aifm {args.command}: error: {error.filename or ''}: {error.strerror}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
