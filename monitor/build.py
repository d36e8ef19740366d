"""Which modules the install compiles, and which of them this process runs compiled.

The per-event path is written once, in these Python modules. When the package is
installed with Cython and a C compiler (``pip install -e .``: Cython is a build
requirement), ``setup.py`` compiles each of them into an extension module beside its
source, typed by the ``.pxd`` file next to it where one exists (Cython's pure-Python
mode: the ``.py`` stays the one source of truth and runs unchanged without a compiler).
An extension module is imported in preference to its source.

``AIFM_PURE_PYTHON=1`` makes a process import the sources instead (see
:func:`prefer_sources`): the interpreted build, without reinstalling, which is how the
digest check (``bench/bench_builds.py``) compares the two builds on the same events.
``AIFM_PURE_PYTHON=1`` at install time builds no extension at all.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys
import warnings
from pathlib import Path

#: The modules of the per-event path, compiled where a compiler is available.
COMPILED_MODULES = (
    "monitor.detectors.base",
    "monitor.detectors.cusum",
    "monitor.detectors.bernoulli_cusum",
    "monitor.detectors.event_rate",
    "monitor.detectors.embedding_drift",
    "monitor.rounding",
    "monitor.words",
    "monitor.pipeline.core",
    "monitor.pipeline.streams",
    "monitor.pipeline.cooldown",
    "monitor.signals.agent_loop",
    "monitor.signals.audit_gap",
    "monitor.signals.error_rate",
    "monitor.signals.hallucination",
    "monitor.signals.latency",
    "monitor.signals.prompt_injection",
    "monitor.signals.refusal",
    "monitor.signals.tool_failure",
    "monitor.signals.tool_scope",
    "monitor.signals.usage",
    "monitor.signals.embedding_drift",
    "monitor.signals.feedback",
    "monitor.signals.kill_switch",
    "monitor.findings",
    "monitor.keys",
    "monitor.tally",
    "monitor.metrics",
    "monitor.events",
    "monitor.worker.processor",
    "monitor.replay.reader",
    "monitor.replay.run",
)

#: Set (to anything but "" or "0") to run, or to install, the interpreted build.
PURE_PYTHON_ENV = "AIFM_PURE_PYTHON"


def pure_python_requested(environ=os.environ) -> bool:
    return environ.get(PURE_PYTHON_ENV, "") not in ("", "0")


def build_environment(interpreted: bool, environ=os.environ) -> dict[str, str]:
    """A copy of ``environ`` for a child process that runs the interpreted build, or the default one (compiled where built)."""
    child = {name: value for name, value in environ.items() if name != PURE_PYTHON_ENV}
    if interpreted:
        child[PURE_PYTHON_ENV] = "1"
    return child


def compiled_modules() -> list[str]:
    """The modules of :data:`COMPILED_MODULES` that this process has imported from extension modules."""
    return [name for name in COMPILED_MODULES if _is_extension(sys.modules.get(name))]


def build_name() -> str:
    """``compiled`` when every module of the per-event path runs compiled, ``interpreted`` when none does, else ``partly compiled``."""
    for name in COMPILED_MODULES:
        importlib.import_module(name)
    compiled = len(compiled_modules())
    return "compiled" if compiled == len(COMPILED_MODULES) else "interpreted" if compiled == 0 else "partly compiled"


def _is_extension(module) -> bool:
    return is_extension_file(getattr(module, "__file__", None) or "")


def is_extension_file(path: str) -> bool:
    """Whether ``path`` (a module's ``__file__``) is an extension module: how a module knows it runs compiled."""
    return path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


class _SourcesFirst:
    """A finder for ``monitor``'s modules that sees only ``.py`` sources (and their bytecode), never extension modules.

    ``names``: the modules it applies to (None: every ``monitor.*`` module).
    """

    def __init__(self, names: frozenset[str] | None = None) -> None:
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if not name.startswith("monitor.") or path is None or (self.names is not None and name not in self.names):
            return None
        loaders = [(importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)]
        for entry in path:
            spec = importlib.machinery.FileFinder(entry, *loaders).find_spec(name, target)
            if spec is not None:
                return spec
        return None


def prefer_sources(names=None) -> None:
    """Import ``names`` (default: every module of ``monitor``) from their sources from now on: the interpreted build."""
    sys.meta_path.insert(0, _SourcesFirst(None if names is None else frozenset(names)))


def stale_extensions(package_dir: Path = Path(__file__).parent) -> list[str]:
    """The modules of :data:`COMPILED_MODULES` whose extension is older than its ``.py``, its ``.pxd`` or a ``.pxd`` that one cimports.

    An editable install keeps the extensions it built beside the sources; one edited
    since would shadow the edit. ``make build`` rebuilds them; until then they are not used.
    A module compiled against a stale one is stale too: its extension cannot load beside
    that module's source (Cython checks the size of the types it cimports).
    """
    against = {name: _compiled_against(package_dir, name) for name in COMPILED_MODULES}
    stale = []
    for name in COMPILED_MODULES:
        base = _path_of(package_dir, name)
        built = [path for suffix in importlib.machinery.EXTENSION_SUFFIXES if (path := base.with_name(base.name + suffix)).exists()]
        if not built:
            continue
        sources = [path for path in (base.with_suffix(".py"), *(_declaration(package_dir, module) for module in against[name])) if path.exists()]
        if max(path.stat().st_mtime for path in sources) > min(path.stat().st_mtime for path in built):
            stale.append(name)
    for name in COMPILED_MODULES:
        if name not in stale and not against[name].isdisjoint(stale):
            stale.append(name)
    return stale


def _path_of(package_dir: Path, name: str) -> Path:
    return package_dir.joinpath(*name.split(".")[1:])


def _declaration(package_dir: Path, name: str) -> Path:
    return _path_of(package_dir, name).with_suffix(".pxd")


def _compiled_against(package_dir: Path, name: str, seen: set[str] | None = None) -> set[str]:
    """``name`` and the modules of ``monitor`` whose ``.pxd`` its own ``.pxd`` cimports, transitively (what it is compiled against)."""
    seen = set() if seen is None else seen
    declaration = _declaration(package_dir, name)
    if name in seen or not declaration.exists():
        return seen
    seen.add(name)
    for line in declaration.read_text().splitlines():
        words = line.split()
        if len(words) > 2 and words[0] == "from" and words[1].startswith("monitor.") and words[2] == "cimport":
            _compiled_against(package_dir, words[1], seen)
    return seen


def choose_build() -> None:
    """At import of ``monitor``: the interpreted build if asked for, else the compiled one less any stale extension (with a warning)."""
    if pure_python_requested():
        prefer_sources()
        return
    stale = stale_extensions()
    if stale:
        warnings.warn(
            f"{len(stale)} compiled modules are older than their sources ({', '.join(stale[:3])}{', ...' if len(stale) > 3 else ''}); "
            "running those from source. Rebuild them: make build (or pip install -e .)",
            RuntimeWarning,
            stacklevel=2,
        )
        prefer_sources(stale)
