# Types for the compiled build (monitor/build.py); kill_switch.py is the source, and runs as it is without a compiler.


cdef class KillSwitchState:
    cdef public object grace_seconds
    cdef public dict _halted_agents, _halted_models
    cdef public bint any_halted
