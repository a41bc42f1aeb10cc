"""`foryou bench filters`: the muted-keyword filter against crafted keywords, and on ordinary traffic.

Records (bench/results/filters.json):
- `filters.muted_keyword.adversarial`: one search of a 10,000-character text against 200 crafted keywords
  sharing a 90-character prefix that the text repeats with near misses (the case an operator found taking
  1.6 s with the former regex alternation), median and max ms over `--repeats` searches, with no match and
  (`.match_at_end`) with a match at the very end; the former regex's time on the same input, measured in
  the same run, is in the params.
- `filters.muted_keyword.c1000`: the whole filter over 1,000 candidates of ordinary text for a user with
  20 muted keywords (median ms).
"""

import argparse
import re
import statistics
import time
from pathlib import Path

from foryou.benchmarks import RESULTS_DIR, record, write_results
from stores.records import Post, UserFeatures
from streams.candidate import Candidate
from streams.filters.muted_keyword import MutedKeywordFilter, muted_keywords
from streams.query import FeedQuery

CRAFTED_KEYWORDS = tuple(("a " * 45) + f"b{i}" for i in range(200))
# Every keyword's prefix over and over, each time ending in a near miss ("b7x" is not the word "b7"): the
# plain forms are found all along the text, so every search runs in full.
LONG_TEXT = (("a " * 45 + "b7x ") * 107)[:10_000]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="foryou bench filters", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="a few repeats (a smoke run)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    return parser.parse_args(argv)


def _times_ms(fn: object, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - started) * 1000)
    return times


def _regex_ms(keywords: tuple[str, ...], text: str) -> float:
    """One search by the former implementation: a single regex alternation of every keyword."""
    alternatives = "|".join(r"\s+".join(re.escape(word) for word in k.split()) for k in keywords)
    pattern = re.compile(r"(?<!\w)(?:" + alternatives + r")(?!\w)")
    started = time.perf_counter()
    pattern.search(text.casefold())
    return (time.perf_counter() - started) * 1000


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    repeats = 3 if args.quick else args.repeats
    searcher = muted_keywords(CRAFTED_KEYWORDS)
    assert searcher is not None
    miss = _times_ms(lambda: searcher.search(LONG_TEXT), repeats)
    hit_text = LONG_TEXT + " " + CRAFTED_KEYWORDS[-1]
    hit = _times_ms(lambda: searcher.search(hit_text), repeats)
    assert not searcher.search(LONG_TEXT) and searcher.search(hit_text)
    regex_ms = _regex_ms(CRAFTED_KEYWORDS, LONG_TEXT)
    params = {"keywords": len(CRAFTED_KEYWORDS), "text_chars": len(LONG_TEXT), "repeats": repeats,
              "former_regex_ms": round(regex_ms, 1), "machine": "2 cores shared with other jobs (noisy)"}

    candidates = [
        Candidate(post_id=i, author_id=i % 50 + 1, source="thunder", core=Post(
            i, i % 50 + 1, 0, text=f"an ordinary post {i} about the match tonight #football @club https://t.co/{i}"))
        for i in range(1, 1_001)
    ]
    query = FeedQuery(user_id=1, request_id="bench", max_results=50, now_ms=0, user_features=UserFeatures(
        muted_keywords=(*(f"keyword{i}" for i in range(19)), "spoilers")))
    muted_filter = MutedKeywordFilter()
    c1000 = _times_ms(lambda: muted_filter.filter(query, candidates), repeats)
    records = [
        record("filters.muted_keyword.adversarial", "median_ms", statistics.median(miss), "ms", **params),
        record("filters.muted_keyword.adversarial", "max_ms", max(miss + hit), "ms", **params),
        record("filters.muted_keyword.adversarial.match_at_end", "median_ms", statistics.median(hit), "ms", **params),
        record("filters.muted_keyword.c1000", "median_ms", statistics.median(c1000), "ms",
               keywords=20, candidates=len(candidates), repeats=repeats),
    ]
    path = write_results("filters", records, args.out)
    for item in records:
        print(f"{item['name']:48} {item['metric']:10} {item['value']:9.3f} {item['unit']}")
    print(f"(the former regex: {regex_ms:.0f} ms for one adversarial search) -> {path}")
    return 0
