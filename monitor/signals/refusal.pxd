# Types for the compiled build (monitor/build.py); refusal.py is the source, and runs as it is without a compiler.
cimport cython

from monitor.rounding cimport round_to
from monitor.words cimport Vocabulary


@cython.locals(start=Py_ssize_t)
cpdef str _prepare(str text)

@cython.locals(position=Py_ssize_t)
cpdef bint _cue_found(str text, str trigger, pattern, Py_ssize_t lead, bint anchored)

@cython.locals(prepared=str, vocabulary=Vocabulary, triggers=set, keep=double, index=Py_ssize_t, weight=double, cue_triggers=tuple, lead=Py_ssize_t, anchored=bint, trigger=str)
cpdef double refusal_score(str text)

cpdef dict refusal_signal(output_text, flag_score, semantic_margin=*, margin_from=*, margin_full=*)
