"""`foryou simulate-post`: how a draft would fare, asked of a running deployment (any number of workers).

The worker it asks (`--worker`, default FORYOU_WEB_HOST:FORYOU_WEB_PORT) fans the request out to every
worker, each scoring the audience members whose state it owns, and merges (see agents.simulate).
"""

import argparse
import sys
from typing import Any

import orjson

from foryou.http import WorkerError, default_worker_url, http_json
from foryou.tables import render_table


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="foryou simulate-post", description=__doc__.splitlines()[0])
    parser.add_argument("--author", type=int, help="the draft's author id")
    parser.add_argument("--text", default="")
    parser.add_argument("--media", choices=["none", "photo", "video"], default="none")
    parser.add_argument("--video-duration-ms", type=int, default=None)
    parser.add_argument("--reply-to", type=int, default=None, help="the post it replies to")
    parser.add_argument("--quote", type=int, default=None, help="the post it quotes")
    parser.add_argument("--post-id", type=int, default=None, help="the id it will be published with")
    parser.add_argument("--as-user", type=int, default=None, help="simulate for this one user only")
    parser.add_argument("--top-k", type=int, default=30, help="feed size: served means ranked within it")
    parser.add_argument("--oon-sample", type=int, default=200, help="out-of-network users sampled")
    parser.add_argument("--compare", action="append", default=[], metavar="DRAFT_JSON",
                        help='another draft to rank against, e.g. \'{"author_id": 7, "text": "hi"}\' (repeatable)')
    parser.add_argument("--worker", default=None, help="a worker's URL")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.author is None and not args.compare:
        parser.error("give --author (and the draft's fields), or --compare drafts")
    return args


def _draft(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "author_id": args.author, "text": args.text, "media": args.media,
        "video_duration_ms": args.video_duration_ms, "in_reply_to_post_id": args.reply_to,
        "quote_of_post_id": args.quote, "post_id": args.post_id,
    }


def simulate(worker: str, draft: dict[str, Any], *, top_k: int, oon_sample: int, as_user: int | None = None,
             timeout_s: float = 300.0) -> dict[str, Any]:
    body = {"draft": draft, "top_k": top_k, "oon_sample": oon_sample}
    path = f"/simulate/user/{as_user}" if as_user is not None else "/simulate/post"
    return http_json(f"{worker}{path}", body, timeout_s=timeout_s)


def format_report(report: dict[str, Any]) -> str:
    imp, aud = report["expected_impressions"], report["audience"]
    dist = report["weighted_score"]
    lines = [
        f"draft by {report['draft']['author_id']} (post id {report['post_id']}), model {report['model']}, "
        f"{len(report['workers'])} worker(s), {report['latency_ms']:.0f} ms",
        f"audience: {aud['followers']} followers + {aud['oon_sampled']} sampled of {aud['oon_population']} others "
        f"({aud['oon_reached_sampled']} reached by retrieval)",
        f"expected impressions: {imp['total']:.1f} (in-network {imp['in_network']:.1f}, "
        f"out-of-network {imp['out_of_network']:.1f}); in the top {report['top_k']} for "
        f"{report['share_in_top_k']:.1%} of the audience",
    ]
    if dist["count"]:
        lines.append(f"weighted score: p10 {dist['p10']:.3f}  p50 {dist['p50']:.3f}  p90 {dist['p90']:.3f}  "
                     f"(min {dist['min']:.3f}, max {dist['max']:.3f}, n={dist['count']})")
    top = sorted(report["expected_engagements"].items(), key=lambda kv: -kv[1])[:8]
    lines.append("expected engagements: " + ", ".join(f"{a} {v:.2f}" for a, v in top))
    if report["filtered"]:
        lines.append("filtered: " + ", ".join(f"{r} {n}" for r, n in report["filtered"].items()))
    sample = report.get("sample_user")
    if sample and "stages" in sample:
        lines.append(format_user(sample))
    return "\n".join(lines)


def format_user(result: dict[str, Any]) -> str:
    lines = [
        f"user {result['user_id']}: {'follower' if result['follower'] else 'out-of-network'}, "
        f"{'reached' if result['reached'] else 'not reached by retrieval'}, rank {result['rank']}, "
        f"{'SERVED' if result['served'] else 'not served'} (top {result['top_k']})"
        + (f", removed by {result['filtered_by']}" if result["filtered_by"] else ""),
    ]
    explain = result.get("explain")
    if explain and explain["probabilities"]:
        top = sorted(explain["probabilities"].items(), key=lambda kv: -kv[1])[:5]
        lines.append("  P: " + ", ".join(f"{a} {p:.3f}" for a, p in top)
                     + f"; weighted {explain['weighted_score']:.3f}, diversity x{explain['diversity_multiplier']:.2f}"
                     + f", oon x{explain['oon_multiplier']:.2f}, final {explain['score']:.3f}")
    lines.append("  stages:")
    lines.append(render_table(
        [("kind", "left"), ("name", "left"), ("in -> out", "right"), ("ms", "right"), ("removed", "left")],
        ([s["kind"], s["name"], f"{s['in']} -> {s['out']}", f"{s['ms']:.2f}",
          ", ".join(f"{r} {n}" for r, n in s["removed"].items())] for s in result["stages"]),
        indent=4,
    ))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    worker = args.worker or default_worker_url()
    drafts = ([_draft(args)] if args.author is not None else []) + [orjson.loads(d) for d in args.compare]
    try:
        results = [
            simulate(worker, d, top_k=args.top_k, oon_sample=args.oon_sample, as_user=args.as_user,
                     timeout_s=args.timeout)
            for d in drafts
        ]
    except WorkerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        sys.stdout.write(orjson.dumps(results if len(results) > 1 else results[0]).decode() + "\n")
        return 0
    if args.as_user is not None:
        for result in results:
            print(format_user(result))
        return 0
    if len(results) == 1:
        print(format_report(results[0]))
        return 0
    ranked = sorted(range(len(results)), key=lambda i: -results[i]["expected_value"])
    print(render_table(
        [("rank", "left"), ("expected value", "right"), ("impressions", "right"), ("in top K", "right"),
         ("engagements (fav/reply/repost)", "right"), ("draft", "left")],
        (
            [str(place), f"{results[i]['expected_value']:.3f}", f"{results[i]['expected_impressions']['total']:.1f}",
             f"{results[i]['share_in_top_k']:.1%}",
             " ".join(f"{results[i]['expected_engagements'][a]:.2f}" for a in ("favorite", "reply", "repost")),
             orjson.dumps(drafts[i]).decode()[:60]]
            for place, i in enumerate(ranked, start=1)
        ),
    ))
    return 0
