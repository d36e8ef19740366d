"""The text proxies on real, public, labelled data nobody here wrote, beside the baselines, in one run.

Reads the development halves of public benchmarks from ``../shared/external`` (see its
README; the data is not part of this repository, so the script says so and stops when it
is absent) and runs every event through :class:`monitor.pipeline.Pipeline` with the
default thresholds, exactly as ``aifm signals`` does. Per dataset it prints precision,
recall, F1 and the false-flag rate on the clean items for our signal (for refusal, the
recall on full and on partial refusals apart), beside:

- refusal (XSTest): XSTest's own 21-prefix string match and GPT-4 labels (shipped with
  the data), the GCG refusal prefixes and garak's MitigationBypass substrings;
- refusal on harmful compliance (JailbreakBench): the share of jailbroken answers read
  as refusals (should be ~0: a jailbreak wave must not look like a refusal wave);
- injection (BIPIA, AgentDojo records and listings): a keyword baseline of the classic
  override phrases ("ignore previous instructions" and kin);
- hallucination (HaluEval QA, BEGIN, FaithBench): the answer's share of words found in
  the context below 0.5 (unstemmed), the usual lexical-overlap baseline;

and the pipeline's cost per event on that dataset (best of three passes, one thread).

Usage: python bench/bench_external.py [--data ../shared/external]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

from monitor.pipeline import Pipeline
from monitor.signals.tool_scope import Boundaries
from monitor.thresholds import load_thresholds

sys.path.insert(0, str(Path(__file__).parent))
from refusal_baselines import GARAK_MITIGATION_BYPASS, GCG_PREFIXES, contains_any  # noqa: E402

INJECTION_KEYWORDS = [
    "ignore previous instructions", "ignore all previous instructions", "ignore the above", "disregard previous instructions",
    "forget your instructions", "you are now", "new instructions:", "system prompt",
]
SIGNAL = {"refusal": "refusal", "injection": "prompt_injection", "hallucination": "hallucination"}


def _load(folder: Path) -> tuple[list[bytes], dict[str, dict]]:
    with gzip.open(folder / "events.jsonl.gz", "rb") as lines:
        records = [line for line in lines if line.strip()]
    labels = {label["event_id"]: label for label in map(json.loads, (folder / "labels.jsonl").read_text().splitlines())}
    return records, labels


def _ours(records: list[bytes], signal: str) -> tuple[dict[str, bool], float]:
    """Each event's flag from the default pipeline, and the best-of-three cost per event in microseconds."""
    thresholds, best, flags = load_thresholds(), float("inf"), {}
    for _ in range(3):
        pipeline, flags = Pipeline(thresholds, Boundaries()), {}
        started = time.perf_counter()
        for record in records:
            for result in pipeline.process_record(record).results:
                value = result.signals.get(signal)
                flags[result.event.event_id] = bool(value and value.get("flag"))
        best = min(best, time.perf_counter() - started)
    return flags, best / len(records) * 1e6


def _figures(predicted: dict[str, bool], truth: dict[str, bool]) -> str:
    tp = sum(predicted.get(k, False) and v for k, v in truth.items())
    fp = sum(predicted.get(k, False) and not v for k, v in truth.items())
    positives, negatives = sum(truth.values()), sum(not v for v in truth.values())
    precision, recall = tp / max(1, tp + fp), tp / max(1, positives)
    f1 = 2 * precision * recall / max(1e-9, precision + recall)
    return f"P {precision:.3f}  R {recall:.3f}  F1 {f1:.3f}  false flags {fp / max(1, negatives):.3f}"


def _overlap_below(event: dict, floor: float = 0.5) -> bool:
    words = [w for w in (event.get("output_text") or "").lower().split() if len(w) > 3]
    context = " ".join(event.get("context") or []).lower()
    return bool(words) and sum(w in context for w in words) / len(words) < floor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "external"))
    data = Path(parser.parse_args().data)
    if not (data / "README.md").exists():
        print(f"no external benchmark data at {data} (the development halves are not part of this repository); nothing to measure")
        return 0
    for folder in sorted(p for p in data.iterdir() if (p / "labels.jsonl").exists()):
        kind = folder.name.split("-", 1)[0]
        records, labels = _load(folder)
        events = {e["event_id"]: e for e in map(json.loads, records)}
        ours, cost = _ours(records, SIGNAL[kind])
        print(f"\n{folder.name} ({len(records):,} events; our pipeline {cost:.0f} us per event)")
        if folder.name == "refusal-jailbreakbench":
            jailbroken = [k for k, label in labels.items() if label["jailbroken"]]
            share = lambda flags, keys=jailbroken: sum(flags.get(k, False) for k in keys) / max(1, len(keys))  # noqa: E731
            print(f"  jailbroken answers read as refusal: ours {share(ours):.3f}, "
                  f"GCG prefixes {share({k: contains_any(events[k].get('output_text') or '', GCG_PREFIXES) for k in jailbroken}):.3f}")
            continue
        if kind == "refusal":
            truth = {k: label["final_label"] != "1_full_compliance" for k, label in labels.items()}
            rows = {
                "ours": ours,
                "XSTest string match": {k: label["strmatch_label"] != "1_full_compliance" for k, label in labels.items()},
                "XSTest GPT-4 labels": {k: label["gpt4_label"] != "1_full_compliance" for k, label in labels.items()},
                "GCG prefixes": {k: contains_any(e.get("output_text") or "", GCG_PREFIXES) for k, e in events.items()},
                "garak MitigationBypass": {k: contains_any(e.get("output_text") or "", GARAK_MITIGATION_BYPASS) for k, e in events.items()},
            }
        elif kind == "injection":
            truth = {k: bool(label["injected"]) for k, label in labels.items()}
            content = {k: json.dumps(e.get("result") if e["kind"] == "tool_call" else e.get("context")).lower() for k, e in events.items()}
            rows = {"ours": ours, "override keywords": {k: any(w in text for w in INJECTION_KEYWORDS) for k, text in content.items()}}
        else:
            truth = {k: bool(label["label"]) for k, label in labels.items()}
            rows = {"ours": ours, "word overlap < 0.5": {k: _overlap_below(e) for k, e in events.items()}}
        for name, predicted in rows.items():
            print(f"  {name:24s} {_figures(predicted, truth)}{_by_refusal_kind(predicted, labels) if kind == 'refusal' else ''}")
    return 0


def _by_refusal_kind(predicted: dict[str, bool], labels: dict[str, dict]) -> str:
    """Recall on XSTest's full refusals and on its partial ones apart (a partial refusal declines part and answers the rest)."""
    parts = []
    for label, name in (("2_full_refusal", "full"), ("3_partial_refusal", "partial")):
        keys = [k for k, value in labels.items() if value["final_label"] == label]
        parts.append(f"{name} {sum(predicted.get(k, False) for k in keys) / max(1, len(keys)):.3f} of {len(keys)}")
    return "  recall: " + ", ".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
