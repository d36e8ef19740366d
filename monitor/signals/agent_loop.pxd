# Types for the compiled build (monitor/build.py); agent_loop.py is the source, and runs as it is without a compiler.
cimport cython


cdef class _Session:
    cdef public Py_ssize_t calls, flagged
    cdef public dict repeats
    cdef public object last_ts, arrived


cdef class SessionTracker:
    cdef public object clock, session_idle_seconds, _watermark
    cdef public Py_ssize_t max_repeats, max_calls_per_session, max_sessions, max_calls_tracked, _calls_tracked
    cdef public object _sessions

    @cython.locals(state=_Session, repeats=Py_ssize_t, call=object, reason=object)
    cpdef dict observe(self, session, tool, args_hash, ts, budget=*)

    cpdef void _evict(self, now)

    cpdef void _forget_oldest(self)
