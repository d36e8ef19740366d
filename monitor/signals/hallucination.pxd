# Types for the compiled build (monitor/build.py); hallucination.py is the source, and runs as it is without a compiler.
cimport cython

from monitor.rounding cimport round_to


@cython.locals(stems=set, stem_of=dict, word=str, stem=str)
cpdef frozenset _content_stems(str text)

cpdef str _stem_of(str word)

cpdef object context_support(output_text, context)

cpdef dict hallucination_signal(mean_logprob, output_text, context, finish_reason, min_mean_logprob, min_context_support, flag_truncation, grounded_share=*, min_grounded_share=*)
