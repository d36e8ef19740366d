"""Offline drivers of the pipeline: replay of history, per-event signals, the simulator."""
