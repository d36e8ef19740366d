# Types for the compiled build (monitor/build.py); streams.py is the source, and runs as it is without a compiler.
cimport cython

from monitor.detectors.base cimport Detector
from monitor.keys cimport KeyCap


cdef class Stream:
    cdef public str signal, detector_name
    cdef public Detector detector
    cdef public Py_ssize_t count, findings
    cdef public object onset

    cpdef bint feed(self, value, double ts)


cdef class KeyStreams:
    cdef public dict key
    cdef public Stream refusal, hallucination, tool_failure, latency, latency_per_token, error_rate, rate_limit, audit_gap, feedback
    cdef public Stream embedding_drift, prompt_drift, input_tokens, output_tokens, calls


cdef class KeyTable:
    cdef public KeyCap cap
    cdef public dict _signals, keyed, _by_raw_name, _labels_by_raw

    @cython.locals(names=dict)
    cpdef KeyStreams get(self, str kind, raw, agent=*)
