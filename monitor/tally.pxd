# Types for the compiled build (monitor/build.py); tally.py is the source, and runs as it is without a compiler.
# An extension type: its item access is dict's own, where a class statement's subclass looks __getitem__ up at every access.

cdef class Tally(dict):
    pass
