# Types for the compiled build (monitor/build.py); error_rate.py is the source, and runs as it is without a compiler.
# cpdef: the pipeline (core.pxd) calls these in C, not through Python's call protocol.

cpdef str classify_error(error_type)

cpdef dict error_signal(error_type)
