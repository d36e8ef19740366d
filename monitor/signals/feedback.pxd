# Types for the compiled build (monitor/build.py); feedback.py is the source, and runs as it is without a compiler.
# cpdef: the pipeline (core.pxd) calls these in C, not through Python's call protocol.

cpdef dict feedback_signal(score, label, negative_below, negative_labels)
