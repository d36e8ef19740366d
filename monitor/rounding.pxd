# Types for the compiled build (monitor/build.py); rounding.py is the source, and runs as it is without a compiler.
cimport cython


@cython.locals(scale=double, scaled=double, fraction=double, whole=double)
cpdef double round_to(double x, Py_ssize_t digits)
