# Types for the compiled build (monitor/build.py); prompt_injection.py is the source, and runs as it is without a compiler.
cimport cython


@cython.locals(kind=type, value_kind=type)
cpdef list _texts(content, list found=*, Py_ssize_t depth=*)

@cython.locals(found=list, keep=double, budget=Py_ssize_t, text=str, lowered=str, bits=cython.ulonglong, needed=cython.ulonglong, name=str, weight=double, substring_gates=tuple)
cpdef tuple _score(list texts)

cpdef bint _substrings_pass(tuple gates, str lowered)

@cython.locals(part=str)
cpdef bint _contains_any(str lowered, tuple parts)

cpdef list _words_of(str lowered)
