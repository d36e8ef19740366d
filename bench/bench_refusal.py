"""Refusal detection on labelled outputs: aifm lexical, aifm lexical + semantic, and keyword baselines, side by side.

Four sets under bench/data/, from most to least flattering: ``refusal_eval.jsonl``
(169 outputs; the lexical rules were written while looking at it), ``refusal_holdout1.jsonl``
(62 outputs written after a first freeze; its misses led to one revision of the rules),
``refusal_holdout2.jsonl`` (40 outputs written after that revision). The semantic
cue's margins (alerts/thresholds.yaml) were first chosen on those 271 outputs, its
start later raised on the public development halves (../shared/external), where the
cue also came to need a lexical cue beside it; its exemplars
(monitor/semantic/exemplars.py) were written apart from them.
``refusal_holdout3.jsonl`` was written after both methods were frozen and committed,
and changed nothing: the honest figure. Prints precision, recall and F1 of each
method, overall and per example type, plus the cost per output (the semantic
method's encoder cost is printed apart).

Usage: python bench/bench_refusal.py [--show-errors] [--lexical-only]
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

from monitor.signals.refusal import refusal_score, refusal_signal  # noqa: E402
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
        for name in [m for m in methods if m.startswith("aifm")]:
            for r in rows:
                if bool(methods[name](r["text"])) != bool(r["label"]):
                    verdict = "MISSED" if r["label"] else "FALSE ALARM"
                    print(f"  {name}: {verdict} ({r['type']}, lexical score {refusal_score(r['text'])}): {r['text']}")


SETS = (
    ("refusal_eval.jsonl", "development set (lexical rules written against it; semantic margins chosen on sets 1-3)"),
    ("refusal_holdout1.jsonl", "holdout 1 (lexical rules revised once after its misses; semantic margins chosen on sets 1-3)"),
    ("refusal_holdout2.jsonl", "holdout 2 (lexical rules never tuned on it; semantic margins chosen on sets 1-3)"),
    ("refusal_holdout3.jsonl", "holdout 3 (written after both methods were frozen: the honest figure)"),
)


def semantic_margins(texts: list[str]) -> tuple[dict[str, float], float]:
    """Each text's refusal margin from the monitor's encoder and exemplars, and the encoding cost per output in microseconds."""
    from monitor.embeddings.encoder import Encoder
    from monitor.semantic.scorer import SemanticScorer

    encoder = Encoder()
    scorer = SemanticScorer.from_encoder(encoder, grounded_similarity=0.5)
    encoder.encode(texts[:8])  # warm-up
    started = time.perf_counter()
    vectors = encoder.encode(texts)
    cost = (time.perf_counter() - started) / len(texts) * 1e6
    return dict(zip(texts, scorer.refusal.margins(vectors).tolist())), cost


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-errors", action="store_true")
    parser.add_argument("--lexical-only", action="store_true", help="skip the semantic method (no encoder needed)")
    args = parser.parse_args(argv)
    options = load_thresholds().signals["refusal"].options
    flag = options["flag_score"]
    sets = [(load(DATA_DIR / name), title) for name, title in SETS if (DATA_DIR / name).exists()]
    methods = {"aifm lexical refusal": lambda t: refusal_score(t) >= flag}
    if not args.lexical_only:
        margins, encode_cost = semantic_margins([r["text"] for rows, _ in sets for r in rows])

        def semantic(text: str) -> bool:
            signal = refusal_signal(text, flag, margins[text], options["semantic_margin_from"], options["semantic_margin_full"])
            return signal["flag"]

        methods["aifm lexical + semantic"] = semantic
    methods["GCG prefix list"] = lambda t: contains_any(t, GCG_PREFIXES)
    methods["garak MitigationBypass"] = lambda t: contains_any(t, GARAK_MITIGATION_BYPASS)
    print(f"aifm flags an output at refusal score >= {flag}; semantic margins {options['semantic_margin_from']}..{options['semantic_margin_full']} (alerts/thresholds.yaml)")
    if not args.lexical_only:
        print(f"the semantic method also pays the encoder: {encode_cost:.0f} us/output (all-MiniLM-L6-v2, CPU, batches of 64), not in the column below")
    for rows, title in sets:
        report(title, rows, methods, args.show_errors)
    report("all sets pooled", [r for rows, _ in sets for r in rows], methods, False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
