"""Root of the test run: the doctests of compiled modules.

Where the per-event path is compiled (``monitor/build.py``), ``monitor/x.py`` is
imported as ``monitor/x.cpython-*.so``; pytest would refuse the module for not being the
file it collected. The doctests are meant for exactly that module, whichever build it is.
"""

import os

os.environ.setdefault("PY_IGNORE_IMPORTMISMATCH", "1")
