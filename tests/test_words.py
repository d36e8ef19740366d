"""A vocabulary finds exactly the words a set intersection finds, in both builds: the cue gates open on the same texts whichever build reads them."""

from __future__ import annotations

import random
import re
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.build import build_environment
from monitor.signals.prompt_injection import _GATE_WORDS
from monitor.signals.refusal import _TRIGGER_VOCABULARY
from monitor.words import Vocabulary, _hash, _letter_runs, _slot

# Letters, cue words' punctuation, every kind of white space str.split knows (ASCII,
# the C1 and Unicode spaces, the separators 0x1c-0x1f), other scripts, one character
# beyond the Basic Multilingual Plane, a lone surrogate, and what lower-casing turns
# into two characters.
ALPHABET = "abcinotz'.,!?()\"- \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u1680\u2000\u2028\u3000\u00e9\u00df\u0130\u4e2d\u212a\U0001f600\ud800\ufb01"
WORDS = ("a", "an", "cannot", "can't", "not", "not.", "(not", "ai", "\u00e9t\u00e9", "\u4e2d", "o\U0001f600")


def texts(alphabet: str = ALPHABET):
    pieces = st.one_of(st.sampled_from(WORDS), st.text(alphabet, max_size=4))
    return st.lists(pieces, max_size=30).map("".join)


@given(text=texts(), vocabulary=st.sets(st.sampled_from(WORDS), min_size=1))
def test_the_words_found_are_those_of_the_intersection_with_the_white_space_words(text, vocabulary):
    words = Vocabulary(vocabulary)
    expected = set(frozenset(vocabulary).intersection(text.split()))
    assert words.among_words(text) == expected
    assert words._scan(text, False) == expected  # what the compiled build runs, whichever build this is


@given(text=texts(), vocabulary=st.sets(st.sampled_from(WORDS), min_size=1))
def test_the_letter_runs_found_are_those_of_the_intersection_with_the_runs_of_a_to_z(text, vocabulary):
    words = Vocabulary(vocabulary)
    expected = set(frozenset(vocabulary).intersection(re.findall("[a-z]+", text)))
    assert words.among_letter_runs(text) == expected
    assert words._scan(text, True) == expected


def test_the_signals_vocabularies_find_what_the_intersection_finds_on_words_of_every_length():
    rng = random.Random(7)
    for vocabulary in (_TRIGGER_VOCABULARY, _GATE_WORDS):
        known = sorted(vocabulary.words)
        for _ in range(2_000):
            pieces = [rng.choice(known) if rng.random() < 0.3 else "".join(rng.choice("abeginorst'") for _ in range(rng.randint(1, 16)))
                      for _ in range(rng.randint(0, 40))]
            text = "".join(piece + rng.choice((" ", "  ", "\n", ", ", "-")) for piece in pieces)
            assert vocabulary._scan(text, False) == set(vocabulary.words.intersection(text.split())), text
            assert vocabulary._scan(text, True) == set(vocabulary.words.intersection(_letter_runs(text))), text


def test_a_word_that_shares_a_vocabulary_words_length_and_filter_bit_is_not_found():
    rng = random.Random(1)
    target = "ignore"
    twin = next(word for word in ("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(len(target))) for _ in range(10**6))
                if word != target and _slot(_hash(word)) == _slot(_hash(target)))
    words = Vocabulary({target})
    assert words._scan(f"please {twin} that", False) == set() and words._scan(f"{twin} {target}", True) == {target}


def test_a_word_whose_characters_hash_as_a_vocabulary_words_do_is_not_found():
    assert _hash("Aa") == _hash("BB")  # 65 * 31 + 97 == 66 * 31 + 66
    words = Vocabulary({"Aa", "not"})
    assert words._scan("BB", False) == set() and words._scan("BB Aa not", False) == {"Aa", "not"}


def test_words_are_found_at_the_start_and_the_end_of_a_text_and_an_empty_vocabulary_is_refused():
    words = Vocabulary({"not", "can't"})
    assert words._scan("not", False) == {"not"} and words._scan("can't", True) == set() and words._scan("", False) == set()
    assert words._scan("i can't\u3000not", False) == {"can't", "not"} and words._scan("xnot-not", True) == {"not"}
    with pytest.raises(ValueError, match="at least one word"):
        Vocabulary(set())
    with pytest.raises(ValueError, match="no empty one"):
        Vocabulary({"", "not"})


def test_the_interpreted_build_scans_alike():
    code = (
        "import random, re; from monitor.words import Vocabulary, _RUNS_COMPILED; rng = random.Random(3); "
        "v = Vocabulary({'not', 'can\\'t', 'ai', 'ignore', 'rules'}); "
        "ts = [''.join(rng.choice('ainotgrels\\' .\\n\\xa0\\u3000\\u00e9') for _ in range(rng.randint(0, 60))) for _ in range(3_000)]; "
        "print(_RUNS_COMPILED, all(v._scan(t, False) == set(v.words.intersection(t.split())) "
        "and v._scan(t, True) == set(v.words.intersection(re.findall('[a-z]+', t))) == v.among_letter_runs(t) for t in ts))"
    )
    run = subprocess.run([sys.executable, "-c", code], env=build_environment(interpreted=True), capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["False", "True"]
