"""Groundedness and prompt injection, lexical vs lexical + semantic, side by side on labelled sets.

* ``bench/data/groundedness.jsonl``: 24 retrieved contexts, each with a grounded answer
  that paraphrases it, the same answer quoting it, an answer from outside the context,
  and one that contradicts it on the same topic. Prints, per answer type, the share
  flagged unsupported by the lexical proxy (content words found in the context, flag
  below ``min_context_support``) and by the semantic one (share of answer sentences
  that a context sentence supports, flag below ``min_grounded_share``).
* ``bench/data/injection_eval.jsonl`` (development) and ``injection_holdout.jsonl``:
  20 documents each carrying an injection worded unlike the lexical cues, and 20
  ordinary documents with imperative or AI-related wording, per set. The first was
  written after a first freeze and then used to extend the exemplars and choose the
  margins; the holdout was written after that second freeze and changed nothing.
  Prints precision and recall of the lexical cues alone and with the semantic cue.

The semantic methods run as the worker runs them (the same sentence split, exemplars
and thresholds from alerts/thresholds.yaml). Usage: python bench/bench_semantic.py
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path

from monitor.embeddings.encoder import Encoder
from monitor.semantic.scorer import SemanticScorer
from monitor.semantic.scores import MAX_ANSWER_SENTENCES, MAX_CONTEXT_SENTENCES, context_sentences, split_sentences
from monitor.signals.hallucination import hallucination_signal
from monitor.signals.prompt_injection import prompt_injection_signal
from monitor.thresholds import load_thresholds

DATA_DIR = Path(__file__).resolve().parent / "data"


def load(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA_DIR / name).read_text().splitlines() if line.strip()]


def sentence_vectors(encoder: Encoder, text: str, limit: int):
    return encoder.encode(split_sentences(text, limit) or [text])


def groundedness(encoder: Encoder, scorer: SemanticScorer, options: dict) -> None:
    rows = load("groundedness.jsonl")
    flagged: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    started = time.perf_counter()
    for row in rows:
        context = encoder.encode(context_sentences(row["context"]))
        answer = sentence_vectors(encoder, row["answer"], MAX_ANSWER_SENTENCES)
        semantic = scorer.score(answer[0], answer, context)
        common = {"mean_logprob": None, "output_text": row["answer"], "context": row["context"], "finish_reason": None, "flag_truncation": False}
        lexical = hallucination_signal(**common, min_mean_logprob=options["min_mean_logprob"], min_context_support=options["min_context_support"])
        embedded = hallucination_signal(
            **common,
            min_mean_logprob=options["min_mean_logprob"],
            min_context_support=options["min_context_support"],
            grounded_share=semantic.grounded_share,
            min_grounded_share=options["min_grounded_share"],
        )
        flagged[row["type"]]["lexical"].append(lexical["flag"])
        flagged[row["type"]]["semantic"].append(embedded["flag"])
    cost = (time.perf_counter() - started) / len(rows) * 1e3
    print(f"\n== groundedness: {len(rows)} answers; share flagged unsupported (grounded_* want 0.00, the others 1.00)")
    print(f"semantic: grounded_similarity {options['grounded_similarity']}, min_grounded_share {options['min_grounded_share']}; lexical: min_context_support {options['min_context_support']}")
    print(f"{'answer type':22} {'n':>3} {'lexical':>8} {'semantic':>9}")
    for kind, by_method in sorted(flagged.items()):
        n = len(by_method["lexical"])
        print(f"{kind:22} {n:>3} {sum(by_method['lexical']) / n:>8.2f} {sum(by_method['semantic']) / n:>9.2f}")
    print(f"encoding answer and context sentences: {cost:.1f} ms per answer on this machine (uncached; the worker caches context sentences)")


def injection(encoder: Encoder, scorer: SemanticScorer, options: dict, name: str, title: str) -> None:
    rows = load(name)
    methods: dict[str, list[bool]] = {"lexical cues": [], "lexical + semantic": []}
    for row in rows:
        margin = float(scorer.injection.margins(sentence_vectors(encoder, row["text"], MAX_CONTEXT_SENTENCES)).max())
        methods["lexical cues"].append(prompt_injection_signal([row["text"]], "context", options["flag_score"])["flag"])
        signal = prompt_injection_signal([row["text"]], "context", options["flag_score"], margin, options["semantic_margin_from"], options["semantic_margin_full"])
        methods["lexical + semantic"].append(signal["flag"])
    labels = [row["label"] for row in rows]
    print(f"\n== prompt injection, {title}: {len(rows)} documents, {sum(labels)} with an injection")
    print(f"{'method':22} {'precision':>9} {'recall':>7}")
    for name, predictions in methods.items():
        tp = sum(p and y for p, y in zip(predictions, labels))
        fp = sum(p and not y for p, y in zip(predictions, labels))
        print(f"{name:22} {tp / (tp + fp) if tp + fp else 1.0:>9.3f} {tp / sum(labels):>7.3f}")


def main() -> int:
    signals = load_thresholds().signals
    encoder = Encoder()
    scorer = SemanticScorer.from_encoder(encoder, signals["hallucination"].options["grounded_similarity"])
    groundedness(encoder, scorer, signals["hallucination"].options)
    for name, title in (("injection_eval.jsonl", "development set"), ("injection_holdout.jsonl", "holdout (written after the margins were frozen)")):
        if (DATA_DIR / name).exists():
            injection(encoder, scorer, signals["prompt_injection"].options, name, title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
