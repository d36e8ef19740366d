# Types for the compiled build (monitor/build.py); embedding_drift.py is the source, and runs as it is without a compiler.
# math.exp, math.log and math.sqrt in the source call the C library's functions here: the ones math wraps, without Python's call protocol.
from libc cimport math

from monitor.detectors.base cimport OnCUSUM


cdef class EmbeddingDrift(OnCUSUM):
    cdef public Py_ssize_t reference, _count
    cdef public double max_per_second
    cdef public object _slot, last_distance, last_tested, last_z, _earlier, _sum, _centroid
    cdef public bint recovered
    cdef public list _toward_earlier
