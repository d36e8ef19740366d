"""ai-failure-monitor: a streaming monitor for the silent failure modes of production AI systems."""

from monitor.build import choose_build

__version__ = "0.1.0"

choose_build()  # the compiled per-event path where it is built and current, else the sources (monitor/build.py)
