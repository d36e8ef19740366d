# Types for the compiled build (monitor/build.py); audit_gap.py is the source, and runs as it is without a compiler.
cimport cython


cdef class AuditGap:
    cdef public dict _fields, _failed_fields, _getters, _failed_getters

    @cython.locals(fields=tuple, values=tuple, index=Py_ssize_t, value=object)
    cpdef dict check(self, event)
