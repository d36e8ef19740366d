# Types for the compiled build (monitor/build.py); usage.py is the source, and runs as it is without a compiler.
# cpdef: the pipeline (core.pxd) calls these in C, not through Python's call protocol.

cpdef dict usage_signal(input_tokens, output_tokens)

cpdef double log_tokens(tokens)
