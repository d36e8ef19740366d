# Types for the compiled build (monitor/build.py); event_rate.py is the source, and runs as it is without a compiler.
# math.exp, math.log and math.sqrt in the source call the C library's functions here: the ones math wraps, without Python's call protocol.
from libc cimport math

from monitor.detectors.base cimport OnCUSUM


cdef class EventRate(OnCUSUM):
    cdef public double window
    cdef public object _current
    cdef public Py_ssize_t _count

    cpdef update(self, x, t=*)
