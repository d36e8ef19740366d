# Types for the compiled build (monitor/build.py); latency.py is the source, and runs as it is without a compiler.
# cpdef: the pipeline (core.pxd) calls these in C, not through Python's call protocol.

cpdef dict latency_signal(latency_ms, output_tokens, per_token_min_output_tokens)

cpdef double log_seconds(double seconds)
