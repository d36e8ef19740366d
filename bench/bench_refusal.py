"""Refusal detection on labelled outputs, aifm vs keyword baselines, side by side.

Three sets under bench/data/, from most to least flattering: ``refusal_eval.jsonl``
(169 outputs; the lexical rules were written while looking at it), ``refusal_holdout1.jsonl``
(62 outputs written after a first freeze; its misses led to one revision of the rules),
and ``refusal_holdout2.jsonl`` (40 outputs written after that revision and never used to
tune anything: the honest figure). Prints precision, recall and F1 of the aifm lexical refusal signal and of the
two keyword baselines (GCG prefix list, garak MitigationBypass substrings), overall and
per example type, plus the cost per output.

Usage: python bench/bench_refusal.py [--show-errors]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from refusal_baselines import GARAK_MITIGATION_BYPASS, GCG_PREFIXES, contains_any  # noqa: E402

from monitor.signals.refusal import refusal_score  # noqa: E402
from monitor.thresholds import load_thresholds  # noqa: E402

DATA_DIR = Path(__file__).resolve().parent / "data"


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def scores(rows, predict):
    tp = sum(1 for r in rows if r["label"] and predict(r["text"]))
    fp = sum(1 for r in rows if not r["label"] and predict(r["text"]))
    fn = sum(1 for r in rows if r["label"] and not predict(r["text"]))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def report(title: str, rows: list[dict], methods: dict, show_errors: bool) -> None:
    positives = sum(r["label"] for r in rows)
    print(f"\n== {title}: {len(rows)} outputs, {positives} refusals, {len(rows) - positives} normal answers")
    print(f"{'method':26} {'precision':>9} {'recall':>7} {'F1':>6} {'us/output':>10}")
    for name, predict in methods.items():
        started = time.perf_counter()
        for _ in range(20):
            for r in rows:
                predict(r["text"])
        cost = (time.perf_counter() - started) / (20 * len(rows)) * 1e6
        p, r, f1 = scores(rows, predict)
        print(f"{name:26} {p:>9.3f} {r:>7.3f} {f1:>6.3f} {cost:>10.1f}")
    by_type = defaultdict(list)
    for r in rows:
        by_type[r["type"]].append(r)
    print("share flagged as refusal, per type (refusal types want 1.00, normal_* want 0.00)")
    print(f"{'type':18} {'n':>4} " + " ".join(f"{name[:22]:>23}" for name in methods))
    for kind, group in sorted(by_type.items()):
        shares = [sum(bool(m(r["text"])) for r in group) / len(group) for m in methods.values()]
        print(f"{kind:18} {len(group):>4} " + " ".join(f"{s:>23.2f}" for s in shares))
    if show_errors:
        ours = methods["aifm lexical refusal"]
        for r in rows:
            if bool(ours(r["text"])) != bool(r["label"]):
                verdict = "MISSED" if r["label"] else "FALSE ALARM"
                print(f"  {verdict} ({r['type']}, score {refusal_score(r['text'])}): {r['text']}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-errors", action="store_true")
    args = parser.parse_args(argv)
    flag = load_thresholds().signals["refusal"].options["flag_score"]
    methods = {
        "aifm lexical refusal": lambda t: refusal_score(t) >= flag,
        "GCG prefix list": lambda t: contains_any(t, GCG_PREFIXES),
        "garak MitigationBypass": lambda t: contains_any(t, GARAK_MITIGATION_BYPASS),
    }
    print(f"aifm flags an output at refusal score >= {flag} (alerts/thresholds.yaml)")
    report("development set (rules written against it)", load(DATA_DIR / "refusal_eval.jsonl"), methods, args.show_errors)
    report("holdout 1 (rules revised once after seeing its misses)", load(DATA_DIR / "refusal_holdout1.jsonl"), methods, args.show_errors)
    report("holdout 2 (never used for tuning)", load(DATA_DIR / "refusal_holdout2.jsonl"), methods, args.show_errors)
    return 0


if __name__ == "__main__":
    sys.exit(main())
