from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.pipeline import Pipeline
from monitor.signals.tool_scope import load_boundaries
from monitor.thresholds import load_thresholds

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "replay" / "samples"


@pytest.fixture(scope="session")
def thresholds():
    return load_thresholds(REPO / "alerts" / "thresholds.yaml")


@pytest.fixture(scope="session")
def sample_boundaries():
    return load_boundaries(SAMPLE / "boundaries")


@pytest.fixture
def pipeline(thresholds, sample_boundaries):
    return Pipeline(thresholds, sample_boundaries)


def model_call(i: int, **fields) -> dict:
    """A complete, clean model call at t = 1_700_000_000 + i seconds."""
    event = {
        "kind": "model_call",
        "event_id": f"m-{i}",
        "ts": 1_700_000_000 + i,
        "caller": "svc",
        "agent": "support-bot",
        "model": "gpt-4o",
        "model_version": "v1",
        "input_hash": "ih",
        "output_hash": "oh",
        "output_text": "Here is the answer you asked for.",
        "latency_ms": 500.0,
        "output_tokens": 50,
    }
    event.update(fields)
    return event


def tool_call(i: int, **fields) -> dict:
    event = {
        "kind": "tool_call",
        "event_id": f"t-{i}",
        "ts": 1_700_000_000 + i,
        "caller": "svc",
        "agent": "support-bot",
        "tool": "search_kb",
        "status": "ok",
        "args_hash": f"a-{i}",
        "session_id": f"s-{i // 10}",
    }
    event.update(fields)
    return event


def encode(event: dict) -> bytes:
    return json.dumps(event).encode()
