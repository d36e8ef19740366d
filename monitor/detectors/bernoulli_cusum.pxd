# Types for the compiled build (monitor/build.py); bernoulli_cusum.py is the source, and runs as it is without a compiler.
cimport cython
# math.exp, math.log and math.sqrt in the source call the C library's functions here: the ones math wraps, without Python's call protocol.
from libc cimport math

from monitor.detectors.base cimport Detector, forgetting


cdef class HourlyProfile:
    cdef public Py_ssize_t min_count
    cdef public list n, ones

    @cython.locals(counts=list, positives=list, overall=double, raw=list, variances=list, seen=list, spread=double, sampling=double, hours_seen=Py_ssize_t,
                   radius=Py_ssize_t, hours=Py_ssize_t, hour=Py_ssize_t, offset=Py_ssize_t, index=Py_ssize_t, weight=Py_ssize_t, count=Py_ssize_t, positive=Py_ssize_t,
                   n_sum=Py_ssize_t, ones_sum=Py_ssize_t, squares_sum=Py_ssize_t, n=double, ones=double, squares=double, rate=double, v=double, between=double)
    cpdef list rates(self)

    cpdef void add(self, Py_ssize_t hour, x)


cdef class BernoulliCUSUM(Detector):
    cdef public Py_ssize_t warmup, _n, _ones
    cdef public object p0, burst_ratio, _rate, _hour, _since, _folded_at
    cdef public double ratio, min_p0, h, burst_h, level_memory
    cdef public bint by_hour
    cdef public HourlyProfile _profile
    cdef public double _sum, _burst, _w1, _w0, _b1, _b0
    cdef public list _recent, _chunk

    cpdef void _relearn(self)
    cpdef void _set_reference(self, double p0)

    @cython.locals(rates=list, since=list, expected=double, index=Py_ssize_t)
    cpdef double _learned_rate(self, hour, t=*)

    @cython.locals(burst=double)
    cpdef double statistic_value(self)

    cdef public object _at_hour
    cdef public Py_ssize_t _at_slot
    cdef public double _at_start

    @cython.locals(seconds=double, start=double)
    cpdef bint _place(self, t)

    @cython.locals(pending=bint, fraction=double, total=double, burst=double, timed=bint)
    cpdef update(self, x, t=*)
