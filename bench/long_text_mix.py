"""The simulator's traffic with long, real-looking text: what a RAG assistant with tools sends.

``simulate`` writes one-sentence outputs; production answers run to paragraphs, carry
retrieved passages, and tools return listings of records. Here every model call keeps
its shape (latency, tokens, errors, incidents) but answers with several of the labelled
texts in ``bench/data`` (refusals, grounded and ungrounded answers), two to six retrieved
passages ride along on half of them, and every successful tool call returns a listing
of four to twelve records, some with injected instructions. Deterministic for a seed.
Used by ``bench/bench_builds.py`` (compiled against interpreted) and
``bench/bench_instructions.py`` (the text mix).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from monitor.replay.simulate import simulate

DATA = Path(__file__).resolve().parent / "data"


def _texts() -> tuple[list[str], list[str], list[str]]:
    """(answers, passages, records) from the labelled sets in bench/data."""
    answers, passages, records = [], [], []
    for path in sorted(DATA.glob("refusal_*.jsonl")):
        answers += [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]
    for line in (DATA / "groundedness.jsonl").read_text().splitlines():
        item = json.loads(line)
        answers.append(item["answer"])
        passages += item["context"]
    for path in sorted(DATA.glob("injection_*.jsonl")):
        records += [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]
    return answers, sorted(set(passages)), records


def long_text_mix(n_events: int, *, seed: int = 5) -> list[dict]:
    """``n_events`` simulated events (and the simulator's control events) with long texts in place of short ones."""
    answers, passages, records = _texts()
    rng = random.Random(seed)
    events, _ = simulate(n_events, seed=seed)
    for event in events:
        if event["kind"] == "model_call" and event.get("output_text"):
            event["output_text"] = "\n\n".join(rng.sample(answers, rng.randint(3, 8)))
            if rng.random() < 0.5:
                event["context"] = rng.sample(passages, rng.randint(2, 6))
        elif event["kind"] == "tool_call" and event.get("status") == "ok":
            event["result"] = {"ok": True, "items": [{"id": i, "text": text} for i, text in enumerate(rng.sample(records, rng.randint(4, 12)))]}
    return events
