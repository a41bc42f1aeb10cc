"""The demo's product lines (`foryou demo`): the feed explorer beside the trained worker while it runs, the
simulated reach of a sample draft, and the trained checkpoint's calibration summary. Each helper returns or
prints one line and never fails the demo: a failure is reported in its line instead."""

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

from foryou.explore.server import ExplorerServer
from foryou.http import http_json


def start_explorer(worker_url: str) -> ExplorerServer | None:
    try:
        server = ExplorerServer(worker_url).start()
    except Exception as exc:  # the demo goes on without its explorer
        print(f"  feed explorer: not started ({exc})", flush=True)
        return None
    print(f"  feed explorer: {server.url} (open it while this policy runs)", flush=True)
    return server


def sample_draft_line(worker_url: str, world: Any) -> str:
    """A draft by the world's most prolific author, simulated over its audience by the running worker."""
    author = Counter(world.posts.author.tolist()).most_common(1)[0][0] + 1  # world user index + 1 = user id
    body = {"draft": {"author_id": author, "text": "A sample draft from the demo"}, "top_k": 10, "oon_sample": 100}
    try:
        report = http_json(f"{worker_url}/simulate/post", body, timeout_s=600)
    except Exception as exc:
        return f"simulated reach of a sample draft: failed ({exc})"
    imp = report["expected_impressions"]
    top = sorted(report["expected_engagements"].items(), key=lambda kv: -kv[1])[:3]
    return (f"simulated reach of a draft by user {author}: {imp['total']:.1f} expected impressions "
            f"(in-network {imp['in_network']:.1f}, out-of-network {imp['out_of_network']:.1f}), in the top 10 of "
            f"{report['share_in_top_k']:.0%} of {report['audience']['followers']} followers + "
            f"{report['audience']['oon_sampled']} sampled others; expected "
            + ", ".join(f"{a} {v:.2f}" for a, v in top) + f" ({report['latency_ms']:.0f} ms)")


def calibration_line(checkpoint: Path, log_path: Path, out: Path) -> str:
    from foryou.calibrate import calibrate, summary_line

    args = argparse.Namespace(checkpoint=checkpoint, data=log_path, from_topics=False, out=out / "calibrate",
                              save=False, tune_weights=False, negative_penalty=5.0, json=False)
    try:
        report = calibrate(args)
    except Exception as exc:
        return f"calibration: failed ({exc})"
    return f"{summary_line(report)}; curves: {report['reliability_png']}"
