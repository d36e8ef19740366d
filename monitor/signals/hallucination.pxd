# Types for the compiled build (monitor/build.py); hallucination.py is the source, and runs as it is without a compiler.
cimport cython

from monitor.rounding cimport round_to


@cython.locals(stems=set, stem_of=dict, word=str, stem=str)
cpdef frozenset _content_stems(str text)

cpdef str _stem_of(str word)
