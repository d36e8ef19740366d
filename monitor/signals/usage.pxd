# Types for the compiled build (monitor/build.py); usage.py is the source, and runs as it is without a compiler.
# math.exp, math.log and math.sqrt in the source call the C library's functions here: the ones math wraps, without Python's call protocol.
from libc cimport math

# cpdef: the pipeline (core.pxd) calls these in C, not through Python's call protocol.

cpdef dict usage_signal(input_tokens, output_tokens)

cpdef double log_tokens(tokens)
