# Types for the compiled build (monitor/build.py); prompt_injection.py is the source, and runs as it is without a compiler.
cimport cython

from monitor.rounding cimport round_to
from monitor.words cimport Vocabulary


@cython.locals(kind=type, value_kind=type)
cpdef list _texts(content, list found=*, Py_ssize_t depth=*)

@cython.locals(bits_of_word=dict, gate_words=Vocabulary, cues=tuple, needed_bits=tuple, index=Py_ssize_t, found=list, keep=double, budget=Py_ssize_t, text=str, lowered=str, bits=cython.ulonglong, needed=cython.ulonglong, name=str, weight=double, substring_gates=tuple, aligned=bint, marks=cython.uint)
cpdef tuple _score(list texts)

@cython.locals(word=str, position=Py_ssize_t)
cpdef bint _matches_at_starts(pattern, str text, str lowered, present, frozenset starts)

cpdef bint _substrings_pass(tuple gates, str lowered, unsigned int marks)

@cython.locals(part=str, mark=cython.uint)
cpdef bint _contains_any(str lowered, tuple parts, unsigned int marks)

@cython.locals(marks=cython.uint, bit=cython.uint, char=str)
cpdef unsigned int _marks_of(str lowered)

cpdef list untrusted_texts(content)

cpdef dict prompt_injection_signal(content, str source, flag_score, semantic_margin=*, margin_from=*, margin_full=*)
