# Types for the compiled build (monitor/build.py); keys.py is the source, and runs as it is without a compiler.
# cpdef: the key table (streams.pxd) and the metrics (metrics.pxd) call these in C, not through Python's call protocol.
cimport cython


cdef class KeyCap:
    cdef public object max_values
    cdef public dict _admitted
    cdef public Py_ssize_t folded

    @cython.locals(admitted=set)
    cpdef value(self, label, raw)


cdef class SeriesCap:
    cdef public KeyCap values
    cdef public object max_series
    cdef public set _series
    cdef public dict _cache
    cdef public Py_ssize_t folded

    @cython.locals(capped=tuple)
    cpdef tuple labels(self, tuple labels)

    cpdef value(self, label, raw)
