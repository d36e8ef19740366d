# Types for the compiled build (monitor/build.py); tool_scope.py is the source, and runs as it is without a compiler.
# cpdef: the pipeline (core.pxd) calls these in C, not through Python's call protocol.

cpdef dict tool_scope_signal(boundaries, agent, tool, status)
