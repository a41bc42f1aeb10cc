"""The SNAP Higgs Twitter activity (De Domenico et al., Scientific Reports 3:2980, 2013) as an engagement log.

The data has rows `userA userB unix_ts ACTION` (RT, RE, MT) where the engaged item is userB, the author, not
a tweet, and it has no non-engagements. The conversion:
- Posts: one derived post per author per hour (post_id = author * 1000 + hour index + 1, hours counted
  from 2012-07-01 00:00 UTC, < 1000 for the week covered), so engaging with an author in a given hour is
  engaging with that post.
- Labels: RT -> repost, RE -> reply, MT -> quote. A mention is a post the user wrote that points at the
  author, i.e. an authored, public reference like a quote, not a passive view such as profile_click.
  Rows with the same (userA, userB, second) are one event with several labels (a reply almost always comes
  with its mention, so most replies are labelled reply + quote). Self-engagements (userA == userB) are
  dropped.
- Surface: the data does not say where users saw the tweets, so every line has surface "other".
- Requests and negatives: all events of a user in the same second form one request; negatives are sampled
  with `phoenix.examples.sample_negatives` (popularity-weighted from all engagements in the window before
  the request, never from the future) so that each request holds engaged and non-engaged impressions.
"""

import argparse
import gzip
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from phoenix.examples import sample_negatives
from phoenix.log import Impression, write_log

DEFAULT_DATA_DIR: Final = Path("/work/shared/data/higgs")
ACTIVITY_FILE: Final = "higgs-activity_time.txt.gz"
ACTION_MAP: Final[dict[str, str]] = {"RT": "repost", "RE": "reply", "MT": "quote"}
FIRST_HOUR_S: Final = 1_341_100_800  # 2012-07-01 00:00:00 UTC, the start of the data
POST_WINDOW_S: Final = 3600
SURFACE: Final = "other"


@dataclass(frozen=True)
class HiggsStats:
    rows: int
    self_rows_dropped: int
    events: int
    requests: int
    positive_lines: int
    negative_lines: int
    requests_without_negatives: int

    def summary(self) -> str:
        return (
            f"{self.rows} rows -> {self.events} events in {self.requests} requests "
            f"({self.self_rows_dropped} self-engagement rows dropped); {self.positive_lines} engaged and "
            f"{self.negative_lines} sampled non-engaged lines; {self.requests_without_negatives} requests "
            "got no negatives (empty window)"
        )


def derived_post_id(author_id: int, unix_ts: int) -> int:
    return author_id * 1000 + (unix_ts - FIRST_HOUR_S) // POST_WINDOW_S + 1


def read_activity(path: Path, max_rows: int | None = None) -> tuple[list[Impression], int, int]:
    """Engaged impressions (one per event, labels merged), the rows read and the self rows dropped."""
    events: dict[tuple[int, int, int], list[str]] = {}
    rows = dropped = 0
    with gzip.open(path, "rt", encoding="ascii") as handle:
        for line in handle:
            if max_rows is not None and rows >= max_rows:
                break
            rows += 1
            user, author, ts, code = line.split()
            if user == author:
                dropped += 1
                continue
            labels = events.setdefault((int(user), int(author), int(ts)), [])
            name = ACTION_MAP[code]
            if name not in labels:
                labels.append(name)
    impressions = [
        Impression(user, derived_post_id(author, ts), author, ts * 1000, SURFACE, tuple(labels), None)
        for (user, author, ts), labels in events.items()
    ]
    return impressions, rows, dropped


def higgs_log(
    data_dir: Path = DEFAULT_DATA_DIR,
    max_rows: int | None = None,
    negatives_per_positive: int = 4,
    window_ms: int = 3 * 3_600_000,
    seed: int = 0,
) -> tuple[list[Impression], HiggsStats]:
    """The converted log (time-ordered, engaged and sampled lines) and counts describing it."""
    path = data_dir / ACTIVITY_FILE
    if not path.exists():
        raise FileNotFoundError(f"Higgs activity file not found: {path}")
    positives, rows, dropped = read_activity(path, max_rows)
    log = sample_negatives(positives, negatives_per_positive, window_ms, seed)
    requests: dict[str | None, bool] = {}
    for imp in log:
        requests[imp.request_id] = requests.get(imp.request_id, False) or not imp.engaged
    negatives = sum(1 for imp in log if not imp.engaged)
    stats = HiggsStats(
        rows=rows,
        self_rows_dropped=dropped,
        events=len(positives),
        requests=len(requests),
        positive_lines=len(positives),
        negative_lines=negatives,
        requests_without_negatives=sum(1 for has_negative in requests.values() if not has_negative),
    )
    return log, stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="foryou higgs", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="engagement log to write (JSONL)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--max-rows", type=int, default=None, help="read only the first N activity rows")
    parser.add_argument("--negatives", type=int, default=4, help="sampled negatives per engaged line")
    parser.add_argument("--window-hours", type=float, default=3.0, help="negative sampling window")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        log, stats = higgs_log(
            args.data_dir, args.max_rows, args.negatives, int(args.window_hours * 3_600_000), args.seed
        )
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_log(args.out, log)
    print(f"wrote {args.out}: {stats.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
