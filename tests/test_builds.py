"""The compiled per-event path and its sources: one truth, identical results, never a stale extension."""

from __future__ import annotations

import importlib.machinery
import os
import subprocess
import sys
from pathlib import Path

from monitor.build import COMPILED_MODULES, stale_extensions

REPO = Path(__file__).resolve().parent.parent


def test_the_compiled_and_interpreted_builds_give_identical_signals_findings_dead_letters_metrics_and_snapshots():
    command = [sys.executable, str(REPO / "bench" / "bench_builds.py"), "--events", "4000"]
    if os.environ.get("CI"):  # CI installs the compiled build: a silent fallback would compare Python with itself
        command.append("--require-compiled")
    run = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    assert " NO" not in run.stdout and run.stdout.count(" yes") == 10


def test_the_interpreted_build_is_one_environment_variable_away():
    code = "from monitor.build import build_name; print(build_name())"
    run = subprocess.run([sys.executable, "-c", code], env={**os.environ, "AIFM_PURE_PYTHON": "1"}, capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "interpreted"


def test_an_extension_older_than_its_source_or_any_declaration_is_stale(tmp_path):
    name = COMPILED_MODULES[1]  # monitor.detectors.cusum
    source = tmp_path.joinpath(*name.split(".")[1:]).with_suffix(".py")
    source.parent.mkdir(parents=True)
    source.write_text("")
    extension = source.with_name(source.stem + importlib.machinery.EXTENSION_SUFFIXES[0])
    extension.write_bytes(b"")
    os.utime(source, (1_000, 1_000))
    os.utime(extension, (2_000, 2_000))
    assert stale_extensions(tmp_path) == []
    declaration = tmp_path / "detectors" / "base.pxd"
    declaration.write_text("")
    os.utime(declaration, (3_000, 3_000))
    assert stale_extensions(tmp_path) == [name]
    os.utime(declaration, (1_000, 1_000))
    os.utime(source, (3_000, 3_000))
    assert stale_extensions(tmp_path) == [name]
