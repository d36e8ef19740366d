# Types for the compiled build (monitor/build.py); cusum.py is the source, and runs as it is without a compiler.
cimport cython
# math.exp, math.log and math.sqrt in the source call the C library's functions here: the ones math wraps, without Python's call protocol.
from libc cimport math

from monitor.detectors.base cimport Detector, forgetting


cdef class CUSUM(Detector):
    cdef public Py_ssize_t warmup, test_after, _n
    cdef public double k, h, clip, memory
    cdef public str direction
    cdef public bint recovered, _rises, _falls
    cdef public double _earlier_at, _clock, _mean, _level, _smoothed, _m2, _sd, _upper, _lower, _weight
    cdef public object _earlier, _adapted_at
    cdef public list _toward, _warm

    cpdef void _relearn(self)
    cpdef double statistic_value(self)

    @cython.locals(now=object, sd=double, delta=double, follow_below=double)
    cpdef update(self, x, t=*)

    @cython.locals(z=double, upper=double, lower=double, statistic=double, z_earlier=double, side=Py_ssize_t, total=double)
    cpdef bint _step(self, double x, double mean, double sd, double now)

    @cython.locals(elapsed=double, previous=double, decay=double, bound=double, weight=double, delta=double, sd=double)
    cpdef void _follow(self, double x, double t)
