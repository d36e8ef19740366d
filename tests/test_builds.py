"""The compiled per-event path and its sources: one truth, identical results, never a stale extension."""

from __future__ import annotations

import importlib.machinery
import math
import os
import struct
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from monitor.build import COMPILED_MODULES, build_environment, stale_extensions

REPO = Path(__file__).resolve().parent.parent


def test_the_compiled_and_interpreted_builds_give_identical_signals_findings_dead_letters_metrics_and_snapshots():
    command = [sys.executable, str(REPO / "bench" / "bench_builds.py"), "--events", "4000"]
    if os.environ.get("CI"):  # CI installs the compiled build: a silent fallback would compare Python with itself
        command.append("--require-compiled")
    run = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    assert " NO" not in run.stdout and run.stdout.count(" yes") == 10


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


@given(
    seconds=st.floats(0.0, 86_400.0),
    tokens=st.integers(0, 10**9),
    elapsed=st.floats(0.0, 1e7),
    memory=st.floats(1e-3, 1e7),
    ones=st.integers(0, 10**9),
    distance=st.floats(-1.0, 2.0),
)
def test_the_detectors_exp_log_and_sqrt_give_maths_values_in_either_build(seconds, tokens, elapsed, memory, ones, distance):
    """Compiled, ``math.exp``/``log``/``sqrt`` in these modules are the C library's (their .pxd cimports libc's math): math's values to the bit."""
    from monitor.detectors.base import forgetting
    from monitor.detectors.bernoulli_cusum import _one_standard_error
    from monitor.detectors.embedding_drift import EmbeddingDrift
    from monitor.detectors.event_rate import anscombe
    from monitor.signals.latency import log_seconds
    from monitor.signals.usage import log_tokens

    assert bits(log_seconds(seconds)) == bits(math.log(max(seconds, 1e-3)))
    assert bits(log_tokens(tokens)) == bits(math.log(max(tokens, 1)))
    assert bits(forgetting(elapsed, memory, 1.0, 0.0)) == bits(math.exp(-elapsed / memory) if elapsed else 1.0)
    assert bits(_one_standard_error(ones)) == bits(1.0 + 1.0 / math.sqrt(ones + 1.0))
    assert bits(anscombe(ones)) == bits(2.0 * math.sqrt(ones + 0.375))
    assert bits(EmbeddingDrift.log_distance(distance)) == bits(math.log(max(distance, EmbeddingDrift.MIN_DISTANCE)))


def test_the_interpreted_build_is_one_environment_variable_away():
    code = "from monitor.build import build_name; print(build_name())"
    run = subprocess.run([sys.executable, "-c", code], env=build_environment(interpreted=True), capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "interpreted"


def test_an_extension_older_than_its_source_or_a_declaration_it_is_compiled_against_is_stale(tmp_path):
    name = COMPILED_MODULES[1]  # monitor.detectors.cusum, whose .pxd cimports monitor.detectors.base
    source = tmp_path.joinpath(*name.split(".")[1:]).with_suffix(".py")
    source.parent.mkdir(parents=True)
    source.write_text("")
    extension = source.with_name(source.stem + importlib.machinery.EXTENSION_SUFFIXES[0])
    extension.write_bytes(b"")
    declaration = source.with_suffix(".pxd")
    declaration.write_text("from monitor.detectors.base cimport Detector\n")
    cimported = tmp_path / "detectors" / "base.pxd"
    unrelated = tmp_path / "detectors" / "other.pxd"
    for path in (cimported, unrelated):
        path.write_text("")
    for path in (source, declaration, cimported, unrelated):
        os.utime(path, (1_000, 1_000))
    os.utime(extension, (2_000, 2_000))
    assert stale_extensions(tmp_path) == []
    os.utime(unrelated, (3_000, 3_000))  # a declaration it is not compiled against
    assert stale_extensions(tmp_path) == []
    for path in (cimported, declaration, source):
        os.utime(path, (3_000, 3_000))
        assert stale_extensions(tmp_path) == [name], path.name
        os.utime(path, (1_000, 1_000))
    # the module it cimports, edited and built: stale itself, and so is the module compiled against it,
    # whose extension would fail to load beside that module's source
    base_source = cimported.with_suffix(".py")
    base_source.write_text("")
    base_extension = base_source.with_name(base_source.stem + importlib.machinery.EXTENSION_SUFFIXES[0])
    base_extension.write_bytes(b"")
    os.utime(base_extension, (2_000, 2_000))
    os.utime(base_source, (1_000, 1_000))
    assert stale_extensions(tmp_path) == []
    os.utime(base_source, (3_000, 3_000))
    assert stale_extensions(tmp_path) == [COMPILED_MODULES[0], name]


_CROSS_BUILD = """
import hashlib, json, sys
from monitor.findings import encode_finding
from monitor.pipeline import Pipeline
from monitor.replay.simulate import simulate
from monitor.thresholds import load_thresholds
mode, path = sys.argv[1], sys.argv[2]
raw, _ = simulate(6000, seed=3)
records = [json.dumps(raw[i : i + 100]).encode() for i in range(0, len(raw), 100)]
half = len(records) // 2
pipeline = Pipeline(load_thresholds())
if mode == "take":
    for record in records[:half]:
        pipeline.process_record(record)
    open(path, "wb").write(pipeline.snapshot())
else:
    assert pipeline.restore(open(path, "rb").read())
digest = hashlib.blake2b(digest_size=16)
for record in records[half:]:
    for finding in pipeline.process_record(record).findings:
        digest.update(encode_finding(finding))
digest.update(pipeline.snapshot())
print(digest.hexdigest())
"""


def test_a_snapshot_taken_by_either_build_is_restored_by_the_other_and_goes_on_identically(tmp_path):
    def run(mode: str, pure: bool, path) -> str:
        env = build_environment(interpreted=pure)
        return subprocess.run([sys.executable, "-c", _CROSS_BUILD, mode, str(path)], env=env, capture_output=True, text=True, check=True).stdout.strip()

    for taker_is_pure in (False, True):
        path = tmp_path / f"snapshot-{taker_is_pure}"
        uninterrupted = run("take", taker_is_pure, path)
        assert run("restore", not taker_is_pure, path) == uninterrupted


def test_the_compiled_key_state_declares_every_stream_slot_of_the_registry():
    """A key's streams are typed fields of the compiled KeyStreams: a signal's new slot must be declared in streams.pxd too."""
    from monitor.pipeline.streams import _SLOTS

    declaration = (REPO / "monitor" / "pipeline" / "streams.pxd").read_text()
    key_streams = declaration.split("cdef class KeyStreams:")[1].split("cdef class")[0]
    declared = {name.strip() for line in key_streams.splitlines() if line.strip().startswith("cdef public Stream ") for name in line.strip()[len("cdef public Stream "):].split(",")}
    assert declared == set(_SLOTS), f"monitor/pipeline/streams.pxd: declare {sorted(set(_SLOTS) - declared)}, drop {sorted(declared - set(_SLOTS))}"


def test_a_tally_counts_missing_keys_as_0_and_keeps_its_items_through_copy_and_pickle_in_either_build():
    code = (
        "import copy, pickle; from monitor.tally import Tally; t = Tally({'a': 1}); t['b'] += 2; t[('m', 'input')] += 5; "
        "print(type(t).__module__, t['absent'], 'absent' in t, all(type(c) is Tally and c == {'a': 1, 'b': 2, ('m', 'input'): 5} "
        "for c in (copy.copy(t), copy.deepcopy(t), pickle.loads(pickle.dumps(t)))))"
    )
    for interpreted in (False, True):
        run = subprocess.run([sys.executable, "-c", code], env=build_environment(interpreted=interpreted), capture_output=True, text=True, check=True)
        assert run.stdout.split() == ["monitor.tally", "0", "False", "True"]
