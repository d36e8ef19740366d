# Types for the compiled build (monitor/build.py); tool_failure.py is the source, and runs as it is without a compiler.
# cpdef: the pipeline (core.pxd) calls these in C, not through Python's call protocol.

cpdef bint soft_failure(result)

cpdef dict tool_failure_signal(status, result)
