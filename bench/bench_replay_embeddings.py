"""Replay of a text-only history with a language shift on one model: found or not, identical twice, at what cost.

The history (``text_history.py``: 27,252 events, three models, no precomputed
embeddings, for 30 minutes half of one model's answers in Spanish) goes through
:func:`monitor.replay.run.replay` as ``aifm replay`` runs it: with every output embedded
(the default when the embeddings extra is installed) twice, with a fixed quarter of
outputs, and with embeddings off. Prints, side by side: whether the shift was found and
after how long, findings outside it, whether the two default runs wrote identical
findings, seconds, and what each model's drift stream was fed.

    .venv/bin/python bench/bench_replay_embeddings.py [--events 27252]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from text_history import text_history  # noqa: E402

from monitor.embeddings.embedder import fraction_embedder  # noqa: E402
from monitor.embeddings.encoder import DEFAULT_ENCODER  # noqa: E402
from monitor.replay.run import replay  # noqa: E402
from monitor.replay.scoring import LabelledIncident, score  # noqa: E402
from monitor.thresholds import load_thresholds  # noqa: E402


def run(log: Path, labels: list[LabelledIncident], thresholds, fraction: float | None) -> dict:
    out = io.BytesIO()
    embedder = None if fraction is None else fraction_embedder(fraction, thresholds, DEFAULT_ENCODER)
    if embedder is not None:
        thresholds = thresholds.for_encoder(DEFAULT_ENCODER)  # as aifm replay runs it: the encoder's own drift h
    report = replay([log], thresholds=thresholds, findings_out=out, embedder=embedder)
    result = score(report.findings, labels)
    delay = next((delay for incident, delay in result.detected if "model" in incident.key), None)
    coverage = report.embedding
    fed = {name: (row.embedded, row.fed, row.armed) for name, row in coverage.models.items()} if coverage else {}
    return {"found": delay is not None, "delay": delay, "outside": len(result.false_alarms),
            "seconds": report.seconds, "findings": out.getvalue(), "fed": fed}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=27_252)
    parser.add_argument("--hours", type=float, default=3.0)
    args = parser.parse_args(argv)
    thresholds = load_thresholds()
    with tempfile.TemporaryDirectory() as workdir:
        log = Path(workdir) / "history.jsonl"
        raw = text_history(log, events=args.events, seconds=args.hours * 3600)
        labels = [LabelledIncident(r["signal"], r["key"], r["start"], r["end"]) for r in raw]
        print(f"{args.events:,} text-only events over {args.hours:g} h; half of gpt-4o's answers in Spanish for 30 minutes from the middle")
        rows = [("--embed all (default), run 1", 1.0), ("--embed all (default), run 2", 1.0), ("--embed 0.25", 0.25), ("--embed off", None)]
        results = [(name, run(log, labels, thresholds, fraction)) for name, fraction in rows]
    print(f"\n  {'replay':30} {'shift found':>11} {'after':>8} {'outside':>8} {'seconds':>8}  per model: embedded / fed to drift (armed)")
    for name, r in results:
        delay = f"{r['delay']:.0f} s" if r["delay"] is not None else "-"
        fed = ", ".join(f"{model} {e:,}/{f:,}{'' if armed else ' NOT ARMED'}" for model, (e, f, armed) in r["fed"].items()) or "nothing"
        print(f"  {name:30} {'yes' if r['found'] else 'NO':>11} {delay:>8} {r['outside']:>8} {r['seconds']:>8.1f}  {fed}")
    same = results[0][1]["findings"] == results[1][1]["findings"]
    print(f"\n  the two default runs wrote {'identical' if same else 'DIFFERENT'} findings ({len(results[0][1]['findings']):,} bytes)")
    return 0 if same and results[0][1]["found"] else 1


if __name__ == "__main__":
    sys.exit(main())
