"""MutedKeyword: drops posts whose text contains one of the user's muted keywords.

Matching is case-insensitive (Unicode NFKC and case folding, as keywords are stored) and on word boundaries:
a keyword matches where it is neither preceded nor followed by a word character, so "art" mutes "the art
desk" and "Art!" but not "party"; "#launch" mutes "#LAUNCH" but not a bare "launch" nor "a#launch", while
"launch" also mutes "#launch". A keyword of several words matches them separated by any whitespace. The
texts checked are the post's, the reposted original's and the quoted post's. When the user's features could
not be read, every candidate is dropped (fail closed: muted content must not leak because a store read
failed).

Time linear in the text, whatever the keywords (a user chooses up to 200 of them, so a hostile one can
craft them): text and keywords go through the same canonical form, in which the boundary rules become
plain characters, and one Aho-Corasick automaton per keyword list finds any keyword's canonical form in the
text's in a single pass. The canonical form, after NFKC, case folding and whitespace runs made one space
(each step a linear regex substitution inserting marker characters):
    \x01 before and \x02 after each run of word characters;
    \x04 before a symbol (neither word nor space) that does not follow a word;
    \x05 after a symbol that does not precede a word.
So "art" is "\x01art\x02" and can only meet a whole word; "#launch" is "\x04#\x01launch\x02" and cannot
meet "a#launch" ("\x01a\x02#\x01launch\x02"); every match of the canonical forms is a match of the rules.
Since the markers are only insertions, a keyword can match only a text that holds its plain normalised form:
a first automaton over the plain forms rules out most texts before the canonical form is built.
"""

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import ahocorasick

from stores.social_graph import normalize_keyword
from streams.candidate import Candidate
from streams.query import FeedQuery
from streams.stages import Filter, FilterResult, partition

UNAVAILABLE = "user_features_unavailable"

_MARKERS = re.compile(r"[\x01-\x05]")
_WORD_START = re.compile(r"(?<!\w)(?=\w)")
_WORD_END = re.compile(r"(?<=\w)(?!\w)")
_SYMBOL_NOT_AFTER_WORD = re.compile(r"(?<!\x02)(?=[^\w\s\x01-\x05])")
_SYMBOL_NOT_BEFORE_WORD = re.compile(r"(?<=[^\w\s\x01-\x05])(?!\x01)")


def plain(text: str) -> str:
    """NFKC, case folded, whitespace runs as one space (markers, which the canonical form adds, as spaces)."""
    return normalize_keyword(_MARKERS.sub(" ", text))


def canonical(plain_text: str) -> str:
    """The form in which keywords are searched for in texts (see the module docstring), of a `plain` text."""
    marked = _WORD_END.sub("\x02", _WORD_START.sub("\x01", plain_text))
    return _SYMBOL_NOT_BEFORE_WORD.sub("\x05", _SYMBOL_NOT_AFTER_WORD.sub("\x04", marked))


@dataclass(frozen=True)
class MutedKeywords:
    """A user's keyword list, ready to search texts with."""

    plain: ahocorasick.Automaton  # the plain forms: a quick, sure "no"
    canonical: ahocorasick.Automaton  # the canonical forms: the answer

    def search(self, text: str) -> bool:
        """Whether `text` contains one of the keywords (the rules of the module docstring)."""
        folded = plain(text)
        if next(self.plain.iter(folded), None) is None:
            return False
        return next(self.canonical.iter(canonical(folded)), None) is not None


def _automaton(words: set[str]) -> ahocorasick.Automaton:
    automaton = ahocorasick.Automaton()
    for word in words:
        automaton.add_word(word, word)
    automaton.make_automaton()
    return automaton


@functools.lru_cache(maxsize=256)
def muted_keywords(keywords: tuple[str, ...]) -> MutedKeywords | None:
    """The searcher for a user's keyword list (None when no keyword is left after normalisation)."""
    forms = {plain(keyword) for keyword in keywords} - {""}
    if not forms:
        return None
    return MutedKeywords(_automaton(forms), _automaton({canonical(form) for form in forms}))


def texts_of(candidate: Candidate) -> list[str]:
    return [post.text for post in (candidate.core, candidate.original, candidate.quoted) if post and post.text]


class MutedKeywordFilter(Filter):
    name = "MutedKeyword"

    def filter(self, query: FeedQuery, candidates: Sequence[Candidate]) -> FilterResult:
        if query.user_features is None:
            return partition(candidates, lambda _: UNAVAILABLE)
        keywords = muted_keywords(tuple(query.user_features.muted_keywords))
        if keywords is None:
            return partition(candidates, lambda _: None)

        def reason(candidate: Candidate) -> str | None:
            muted = any(keywords.search(text) for text in texts_of(candidate))
            return "muted_keyword" if muted else None

        return partition(candidates, reason)
