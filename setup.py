"""Compiles the per-event path (monitor/build.py: COMPILED_MODULES) with Cython where it can.

Everything else about the package is in pyproject.toml. Each module is compiled from its
own .py source (and the .pxd beside it, if any); an extension that fails to build is
skipped with a warning (``optional``), so a machine without a C compiler still installs
the interpreted build, which gives identical results. AIFM_PURE_PYTHON=1 builds none.
"""

import importlib.util
import os
from pathlib import Path

from setuptools import Extension, setup

_build = importlib.util.spec_from_file_location("_aifm_build", Path(__file__).parent / "monitor" / "build.py")
build = importlib.util.module_from_spec(_build)
_build.loader.exec_module(build)


def extensions() -> list:
    if build.pure_python_requested():
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("Cython is not installed: installing the interpreted build")
        return []
    modules = [Extension(name, [name.replace(".", "/") + ".py"], optional=True) for name in build.COMPILED_MODULES]
    # binding: compiled functions keep their signatures and docstrings (doctests, inspect, help).
    # annotation_typing off: the sources' annotations document, they do not convert (Cython would
    # reject an int where `float` is annotated); types for the compiler live in the .pxd files.
    return cythonize(modules, compiler_directives={"language_level": 3, "binding": True, "annotation_typing": False}, quiet=True)


# parallel: both cores of a build machine (a serial build of the modules takes ~2 minutes).
setup(ext_modules=extensions(), options={"build_ext": {"parallel": os.cpu_count() or 1}})
