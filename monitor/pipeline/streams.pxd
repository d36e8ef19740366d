# Types for the compiled build (monitor/build.py); streams.py is the source, and runs as it is without a compiler.

from monitor.detectors.base cimport Detector


cdef class Stream:
    cdef public str signal, detector_name
    cdef public Detector detector
    cdef public Py_ssize_t count, findings
    cdef public object onset

    cpdef bint feed(self, value, double ts)
