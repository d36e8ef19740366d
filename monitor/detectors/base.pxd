# Types for the compiled build (monitor/build.py); base.py is the source, and runs as it is without a compiler.

cpdef double forgetting(double elapsed, double memory, double weight, double least)


cdef class Detector:
    cdef public bint _drift_detected
    cdef public double alarm_statistic

    cpdef update(self, x, t=*)
    cpdef double statistic_value(self)


cdef class OnCUSUM(Detector):
    cdef public Detector _cusum

    cpdef double statistic_value(self)
