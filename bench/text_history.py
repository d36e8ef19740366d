"""A text-only history (no precomputed embeddings) with a language shift on one model, and its label.

What a team that exports prompts and outputs but no vectors replays: three models of a
support assistant answering in English, tool calls between them, and for
``shift_minutes`` one model answers a share of its users in Spanish (a routing or
system-prompt change). Only embedding drift on the monitor's own embeddings can see
it: latency, errors and refusals stay as they were. Used by
``bench/bench_replay_embeddings.py`` and by the replay tests.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from pathlib import Path

from embedding_corpus import outputs

MODELS = ("gpt-4o", "claude-sonnet", "llama-3-70b")
_PROMPTS = [
    "Where is my order?", "How do I get a refund?", "Can I change my delivery address?", "Why was I charged twice?",
    "How do I reset my password?", "When does my subscription renew?", "Is this item back in stock?", "Can I exchange this?",
]


def text_history(path: Path, *, events: int, seconds: float, shift_model: str = "gpt-4o", shift_start: float = 0.5,
                 shift_minutes: float = 30.0, shift_share: float = 0.5, pool: int = 6000, seed: int = 11) -> list[dict]:
    """Write ``events`` events over ``seconds`` of event time to ``path``; return the labels of the shift.

    The shift is labelled on the model and on the agent: every call comes from one
    agent, whose own drift stream sees the same shift diluted by the other models.

    ``pool``: distinct English outputs to draw from (a quarter as many Spanish ones); tests
    use a small pool so that most outputs repeat and the encoder's cache keeps them fast.
    """
    rng = random.Random(seed)
    english = outputs("stable", pool, seed)
    spanish = outputs("language", max(1, pool // 4), seed)
    start_ts = 1_700_000_000.0
    shift_from = start_ts + shift_start * seconds
    shift_to = shift_from + shift_minutes * 60
    with open(path, "w", encoding="utf-8") as handle:
        for index in range(events):
            ts = start_ts + index * seconds / events
            if rng.random() < 0.2:
                event = {"kind": "tool_call", "tool": rng.choice(("lookup_order", "issue_refund")), "agent": "support-bot",
                         "status": "ok", "latency_ms": round(rng.lognormvariate(4, 0.3), 1), "args_hash": f"{rng.getrandbits(64):016x}"}
            else:
                model = rng.choice(MODELS)
                shifted = model == shift_model and shift_from <= ts < shift_to and rng.random() < shift_share
                prompt, output = rng.choice(_PROMPTS), rng.choice(spanish if shifted else english)
                tokens = len(output.split()) + 5
                event = {"kind": "model_call", "model": model, "model_version": f"{model}-2026-06", "agent": "support-bot",
                         "input_text": prompt, "output_text": output, "input_hash": _digest(prompt), "output_hash": _digest(output),
                         "latency_ms": round(rng.lognormvariate(5.5, 0.2) + 18 * tokens * rng.lognormvariate(0, 0.1), 1),
                         "input_tokens": rng.randint(50, 400), "output_tokens": tokens, "finish_reason": "stop"}
            event.update(event_id=str(uuid.UUID(int=rng.getrandbits(128))), ts=round(ts, 3), caller="support-frontend")
            handle.write(json.dumps(event) + "\n")
    return [{"signal": "embedding_drift", "key": key, "start": shift_from, "end": shift_to} for key in ({"model": shift_model}, {"agent": "support-bot"})]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
