# Types for the compiled build (monitor/build.py); metrics.py is the source, and runs as it is without a compiler.
cimport cython

from monitor.keys cimport SeriesCap


cdef class Metrics:
    cdef public object registry, build_info, events, rejected, findings, version_changes, blocked_tool_calls, kill_switch_events, tokens, model_errors
    cdef public dict signal_counts, last_finding_at, finding_severities, _serving, model_latency, per_token_latency
    cdef public object embedder, serving_version, processing
    cdef public SeriesCap cap
    cdef public double last_event_ts, last_processed_at
    cdef public object detector_statistic, detector_threshold, detector_events, skipped, snapshots, restores, last_snapshot, checkpoint_failures
    cdef public object snapshot_bytes, consumer_lag, assigned_partitions, rebalances, commit_latency, broker_up, broker_errors
    cdef public object otlp_ignored, otlp_joined, otlp_waiting

    @cython.locals(by_signal=dict, counts=list, value=dict, scope=dict, latency=dict, error=dict, usage=dict, buckets=_Buckets, ts=object)
    cpdef void observe_event(self, event, dict signals, tuple labels)


cdef class _Buckets:
    cdef public tuple bounds
    cdef public list counts
    cdef public double total
    cdef public Py_ssize_t count

    @cython.locals(index=Py_ssize_t, bound=double)
    cpdef void observe(self, double value)
