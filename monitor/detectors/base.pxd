# Types for the compiled build (monitor/build.py); base.py is the source, and runs as it is without a compiler.
# math.exp, math.log and math.sqrt in the source call the C library's functions here: the ones math wraps, without Python's call protocol.
from libc cimport math

cpdef double forgetting(double elapsed, double memory, double weight, double least)


cdef class Detector:
    cdef public bint _drift_detected
    cdef public double alarm_statistic

    cpdef update(self, x, t=*)
    cpdef double statistic_value(self)


cdef class OnCUSUM(Detector):
    cdef public Detector _cusum

    cpdef double statistic_value(self)
