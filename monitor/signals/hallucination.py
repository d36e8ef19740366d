"""Hallucination proxies: cheap evidence that an answer may not be grounded.

Each proxy is computed only when its input is present on the event:

* low confidence: the mean token log-probability is below a floor (models that are
  unsure of their tokens hallucinate more; Kadavath et al. 2022, Manakul et al. 2023);
* unsupported by context: in a retrieval-augmented call, the share of the answer's
  content words (words of 4+ letters, and numbers, Snowball-stemmed so that "knitted"
  matches "knit") that occur in the retrieved passages is below a floor. A leading
  preamble ("Here is a concise summary of the article:") is left out. Lexical, but
  nearly free, and it holds on real data: an invented name, number or claim is a word
  the sources lack. At the default floor (0.8) it scores F1 0.79 on HaluEval QA, 0.88
  on BEGIN and 0.62 balanced accuracy on FaithBench (development halves of
  ../shared/external; the old floor of 0.35 scored 0.28, 0.50 and 0.50): a single new
  word in a short answer already counts;
* not grounded (where the monitor's encoder embedded the call, a budgeted sample):
  the share of the answer's sentences that some sentence of the context supports
  (cosine similarity at least ``grounded_similarity``) is below ``min_grounded_share``.
  It replaces the lexical support there: a faithful paraphrase shares meaning, not
  words. Neither proxy sees an answer that contradicts its context on the same topic
  (that needs entailment, not similarity; ``bench/bench_semantic.py`` measures both);
* truncation: ``finish_reason == "length"``: the answer was cut off, so whatever it
  claims is incomplete.
"""

from __future__ import annotations

import re
import string
import unicodedata
from functools import lru_cache

import Stemmer

from monitor.rounding import round_to
from monitor.signals.spec import UNIT, Option, SignalSpec, StreamSpec

_stem_word = Stemmer.Stemmer("english").stemWord
#: A generic lead-in before the answer proper ("Sure! Here is a summary of the article:").
_PREAMBLE = re.compile(
    r"^\s*(?:(?:sure|certainly|of course|okay|ok)[,!.]?\s*)?(?:here(?:'s| is| are)|below is|the following is)[^.:\n]{0,120}[:.]\s*", re.IGNORECASE
)
_SPLIT_AT = "".join(c for c in string.punctuation if c not in "'-")
# Punctuation to spaces: for ASCII text by bytes.translate (one loop in C); for other text
# by one character class that also holds the punctuation, symbols and format characters
# of the rest of the Basic Multilingual Plane (“quotes”, em—dashes, £ and ° before and
# after numbers, byte-order marks), typographic apostrophes read as "'" first. The class
# costs 15 us on a BIPIA context with non-ASCII characters, str.translate 111 us (it looks
# up every character in a dict and pays an exception for each miss, every letter).
_PUNCTUATION_ASCII = bytes.maketrans(_SPLIT_AT.encode(), b" " * len(_SPLIT_AT))
_JOINERS = "\u00ad\u200c\u200d\u2060"  # soft hyphen, zero-width (non-)joiners, word joiner: inside a word, not between words


@lru_cache(maxsize=1)
def _punctuation() -> re.Pattern:
    """The class, built on first use (a scan of 65,000 code points, ~17 ms: not paid at start-up by processes that never meet non-ASCII text)."""
    separators = "".join(
        char
        for char in map(chr, range(0x80, 0x10000))
        if (unicodedata.category(char)[0] in "PS" or unicodedata.category(char) == "Cf") and char not in _JOINERS
    )
    return re.compile("[" + re.escape(_SPLIT_AT + separators) + "]")


_STOPWORDS = frozenset(
    "that this with from have were what when where which while will would there their them they then than "
    "these those been being into your yours about also some more most such only very just over under each "
    "other because could should does doing done here many much same both before after again once does "
    "can't cannot won't don't it's i'm you're we're".split()
)
CONTEXT_SCAN_CHARS = 8000
OUTPUT_SCAN_CHARS = 3000


#: Each word the stems were taken from, as ``split`` leaves it: its stem, or "" where it is
#: no content word (a stopword, under four characters). Words recur across answers and
#: passages, and a look-up costs a tenth of stripping and stemming the word again. The
#: table is emptied when full (``STEM_TABLE_WORDS``, about 8 MB), so it holds the
#: vocabulary of the moment; every external set together has 34,000 distinct words. Only
#: words of up to ``STEM_TABLE_CHARS`` characters are kept, so a text of long unique
#: tokens (base64, minified code) cannot make the table large.
_STEM_OF: dict[str, str] = {}
STEM_TABLE_WORDS = 50_000
STEM_TABLE_CHARS = 40


def _content_stems(text: str) -> frozenset[str]:
    """Words of 4+ characters and numbers, Snowball-stemmed (English)."""
    text = text.lower()
    if text.isascii():
        text = text.encode("ascii").translate(_PUNCTUATION_ASCII).decode("ascii")
    else:
        text = _punctuation().sub(" ", text.replace("\u2019", "'").replace("\u2018", "'"))
    stems = set()
    stem_of = _STEM_OF
    for word in text.split():  # a repeated word costs one look-up in the table, less than a set of the distinct words
        stem = stem_of.get(word)
        if stem is None:
            stem = _stem_of(word)
            if len(word) <= STEM_TABLE_CHARS:
                if len(stem_of) >= STEM_TABLE_WORDS:
                    stem_of.clear()
                stem_of[word] = stem
        if stem:
            stems.add(stem)
    return frozenset(stems)


def _stem_of(word: str) -> str:
    """The stem of a content word (quotes and hyphens around it stripped), or "" for any other word."""
    word = word.strip("'-")
    if (len(word) > 3 or word.isdigit()) and word not in _STOPWORDS:
        return _stem_word(word)
    return ""


# Retrieval returns the same passages again and again: their stems are worth caching.
_passage_stems = lru_cache(maxsize=8192)(_content_stems)


def context_support(output_text: str, context: list[str]) -> float | None:
    """Share of the answer's content words found in the context, or None if it has none.

    >>> context_support("Canberra is the capital of Australia.", ["Canberra became the capital of Australia in 1913."])
    1.0
    >>> context_support("Sydney hosts parliament since 1901.", ["Canberra became the capital of Australia in 1913."])
    0.0
    """
    answer = _content_stems(_PREAMBLE.sub("", output_text[:OUTPUT_SCAN_CHARS], count=1))
    if not answer:
        return None
    remaining = CONTEXT_SCAN_CHARS
    supported = set()
    for passage in context:
        supported |= answer & _passage_stems(passage[:remaining])
        remaining -= len(passage)
        if remaining <= 0:
            break
    return round_to(len(supported) / len(answer), 4)


def hallucination_signal(
    mean_logprob: float | None,
    output_text: str | None,
    context: list[str] | None,
    finish_reason: str | None,
    min_mean_logprob: float,
    min_context_support: float,
    flag_truncation: bool,
    grounded_share: float | None = None,
    min_grounded_share: float = 0.5,
) -> dict | None:
    """Proxy components, a combined ``score`` in [0, 1] and a ``flag``; None without inputs.

    Each component scores 0.5 at its floor and 1.0 at twice as far past it; the score
    is the largest component, and the flag is set when any component passes its floor.
    """
    result: dict = {}
    score = 0.0
    flag = False
    if mean_logprob is not None:
        component = min(1.0, mean_logprob / (2.0 * min_mean_logprob)) if min_mean_logprob < 0 else 0.0
        low = mean_logprob < min_mean_logprob
        result["mean_logprob"] = mean_logprob
        result["low_confidence"] = low
        score = max(score, component)
        flag = flag or low
    support, name, floor = None, "", 0.0
    if grounded_share is not None:
        support, name, floor = grounded_share, "grounded_share", min_grounded_share
    elif context and output_text:
        support, name, floor = context_support(output_text, context), "context_support", min_context_support
    if support is not None:
        component = max(0.0, min(1.0, 1.0 - support / (2.0 * floor))) if floor > 0 else 0.0
        unsupported = support < floor
        result[name] = support
        result["unsupported"] = unsupported
        score = max(score, component)
        flag = flag or unsupported
    if finish_reason is not None:
        truncated = finish_reason == "length"
        result["truncated"] = truncated
        if truncated and flag_truncation:
            score = max(score, 0.5)
            flag = True
    if not result:
        return None
    result["score"] = round_to(score, 4)
    result["flag"] = flag
    return result


SPEC = SignalSpec(
    name="hallucination",
    proxies="cheap proxies of an unsupported answer: low token confidence, answer words the retrieved context lacks (or answer sentences unsupported by context sentences on embedded calls), truncation",
    reads=("model_call.mean_logprob", "model_call.output_text", "model_call.context", "model_call.finish_reason", "model_call.semantic"),
    series_labels=("model",),
    options={
        "min_mean_logprob": Option(float, (float("-inf"), 0.0)),
        "min_context_support": Option(float, UNIT),
        "semantic_cue": Option(bool),
        "grounded_similarity": Option(float, UNIT),
        "min_grounded_share": Option(float, UNIT),
        "flag_truncation": Option(bool),
    },
    streams=(
        StreamSpec(
            "rate",
            "AIFMHallucinationProxyRateHigh",
            "A model's hallucination-proxy rate rose above its reference.",
            "fails hallucination proxies (low confidence, unsupported by context, truncated) more often than its reference",
            ("model",),
            slot="hallucination",
        ),
    ),
    ratio_level="model",
)
