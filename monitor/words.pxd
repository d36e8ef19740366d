# Types for the compiled build (monitor/build.py); words.py is the source, and runs as it is without a compiler.
cimport cython


@cython.locals(hashed=cython.uint, low_32_bits=cython.uint, char=Py_UCS4)
cpdef unsigned int _hash(str word)

cpdef inline unsigned int _slot(unsigned int hashed)


cdef class Vocabulary:
    cdef readonly frozenset words
    cdef Py_ssize_t _shortest, _longest
    cdef bytes _filter
    cdef list _by_slot

    cpdef among_words(self, str text)

    cpdef among_letter_runs(self, str text)

    @cython.locals(found=set, low_32_bits=cython.uint, inside=bint, start=Py_ssize_t, hashed=cython.uint, position=Py_ssize_t, char=Py_UCS4, word=str)
    cpdef set _scan(self, str text, bint letter_runs)


@cython.locals(slot=cython.uint)
cdef inline str _word_at(Vocabulary vocabulary, str text, Py_ssize_t start, Py_ssize_t end, unsigned int hashed)


@cython.locals(word=str)
cdef str _word_of_slot(tuple words, str text, Py_ssize_t start, Py_ssize_t end)


@cython.locals(index=Py_ssize_t)
cdef inline bint _occurs_at(str word, str text, Py_ssize_t start)


cpdef list _letter_runs(str text)
