"""Which words of a fixed vocabulary a text holds: the question every cue gate asks first.

The lexical signals gate their patterns on words: refusal tries a cue only when one of its
trigger words is among the output's white-space words, prompt injection only when the
content's runs of letters hold the cue's gate words. Asked as
``vocabulary.intersection(text.split())``, the answer builds, hashes and frees a string
for every word of the text, though almost none of them is in the vocabulary: on the
simulator's mix that was 11,500 instructions per model output, on long text a quarter of
the pipeline.

:class:`Vocabulary` answers the same question. Where this module runs compiled, it walks
the text once in C and keeps a word's start and end without building it; only a word
whose length and hash fall where some vocabulary word's do (a bit in a 65,536-bit
filter) is compared, character by character and in place, with the vocabulary's words of
that bit, and the answer holds the vocabulary's own strings: no word of the text is cut
out of it. A word the filter passes over cannot be in the vocabulary, and one it passes
is found only if it equals a vocabulary word, so the answer is the intersection's, word
for word. Run as Python, a loop over characters would cost more than the intersection
saves, so there the intersection itself answers; tests check that both give the same set
in both builds.
"""

from __future__ import annotations

from monitor.build import is_extension_file

#: Bits of the filter (``0xFFFF`` below is its mask). On the long-text mix, 3.1% of the words outside refusal's 1,312
#: trigger tokens pass it, and none outside injection's 139 gate words.
FILTER_BITS = 1 << 16
_RUNS_COMPILED = is_extension_file(__file__)


def _hash(word: str) -> int:
    """A hash of ``word``'s characters modulo 2**32: the one the compiled scan keeps as it reads a word."""
    hashed = 0
    low_32_bits = 0xFFFFFFFF
    for char in word:
        hashed = (hashed * 31 + ord(char)) & low_32_bits
    return hashed


def _slot(hashed: int) -> int:
    """The filter bit of a word whose characters hash to ``hashed``."""
    return (hashed ^ (hashed >> 16)) & 0xFFFF


class Vocabulary:
    """A fixed set of words, and which of them a text holds.

    >>> gates = Vocabulary({"ignore", "instructions", "can't"})
    >>> sorted(gates.among_words("Please IGNORE that. i can't"))
    ["can't"]
    >>> sorted(gates.among_letter_runs("ignore-all prior instructions"))
    ['ignore', 'instructions']
    """

    def __init__(self, words) -> None:
        self.words = frozenset(words)
        if not self.words or "" in self.words:
            raise ValueError("a vocabulary needs at least one word, and no empty one")
        self._shortest = min(len(word) for word in self.words)
        self._longest = max(len(word) for word in self.words)
        bits = bytearray(FILTER_BITS // 8)
        by_slot: list[tuple[str, ...]] = [()] * FILTER_BITS
        for word in sorted(self.words):
            slot = _slot(_hash(word))
            bits[slot >> 3] |= 1 << (slot & 7)
            by_slot[slot] += (word,)
        self._filter = bytes(bits)  # 8 KB, in the nearest cache for every word of a text
        self._by_slot = by_slot  # 512 KB, read only for the words the filter passes

    def among_words(self, text: str) -> set[str] | frozenset[str]:
        """The vocabulary's words among ``text``'s white-space separated words: ``self.words.intersection(text.split())``."""
        if _RUNS_COMPILED:
            return self._scan(text, False)
        return self.words.intersection(text.split())

    def among_letter_runs(self, text: str) -> set[str] | frozenset[str]:
        """The vocabulary's words among ``text``'s runs of the letters a-z (every other character separates them)."""
        if _RUNS_COMPILED:
            return self._scan(text, True)
        return self.words.intersection(_letter_runs(text))

    def _scan(self, text: str, letter_runs: bool) -> set[str]:
        """Both answers in one pass over ``text``; what the compiled build runs (as Python, slowly, in the tests)."""
        found: set[str] = set()
        low_32_bits = 0xFFFFFFFF
        inside = False
        start = 0
        hashed = 0
        position = 0
        for char in text:
            if ("a" <= char <= "z") if letter_runs else not char.isspace():
                if not inside:
                    inside = True
                    start = position
                    hashed = 0
                hashed = (hashed * 31 + ord(char)) & low_32_bits
            elif inside:
                inside = False
                word = _word_at(self, text, start, position, hashed)
                if word is not None:
                    found.add(word)
            position += 1
        if inside:
            word = _word_at(self, text, start, position, hashed)
            if word is not None:
                found.add(word)
        return found


def _word_at(vocabulary: Vocabulary, text: str, start: int, end: int, hashed: int) -> str | None:
    """The word of ``vocabulary`` that ``text[start:end]`` (whose characters hash to ``hashed``) is, if any; compared only where the filter passes it."""
    if not vocabulary._shortest <= end - start <= vocabulary._longest:
        return None
    slot = _slot(hashed)
    if not vocabulary._filter[slot >> 3] & (1 << (slot & 7)):
        return None
    return _word_of_slot(vocabulary._by_slot[slot], text, start, end)


def _word_of_slot(words: tuple[str, ...], text: str, start: int, end: int) -> str | None:
    """The one of ``words`` (a filter bit's) that ``text[start:end]`` is, if any."""
    for word in words:
        if len(word) == end - start and _occurs_at(word, text, start):
            return word
    return None


def _occurs_at(word: str, text: str, start: int) -> bool:
    """Whether ``text`` holds ``word`` from ``start`` on (``text[start:start + len(word)] == word``, without building the slice)."""
    for index in range(len(word)):
        if word[index] != text[start + index]:
            return False
    return True


_NON_LETTERS = bytes(byte for byte in range(256) if not 97 <= byte <= 122)
_NON_LETTERS_TO_SPACE = bytes.maketrans(_NON_LETTERS, b" " * len(_NON_LETTERS))


def _letter_runs(text: str) -> list[str]:
    """The runs of letters a-z in ``text``: bytes.translate (every byte but a-z to a space) and a split, a third of ``re.findall(r"[a-z]+")``'s cost.

    A non-ASCII character is encoded as "?" first, a separator as every other character.

    >>> _letter_runs("ignoreéall, prior-rules")
    ['ignore', 'all', 'prior', 'rules']
    """
    return text.encode("ascii", "replace").translate(_NON_LETTERS_TO_SPACE).decode("ascii").split()
