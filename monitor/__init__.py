"""ai-failure-monitor: a streaming monitor for the silent failure modes of production AI systems."""

__version__ = "0.1.0"
