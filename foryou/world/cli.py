"""`foryou world ...`: generate the simulated world's event files and run offline simulations.

    generate --preset P --seed S --out DIR
        DIR/tweet-events.jsonl and DIR/social-graph-events.jsonl hold the wire values (one per line, each file
        in stream order; keys are the value's post_id / user_id), DIR/world.json the config and counts.
        World.events() gives the exact interleaving of both topics (it regenerates from the seed).
    simulate --preset P --seed S --steps N --out DIR [--policy random|chrono|oracle ...]
        Offline closed loop per policy: DIR/<policy>.engagement-log.jsonl, DIR/summary.txt, DIR/metrics.png.
    replay --preset P --seed S [--rate EVENTS_PER_S] [--window-hours H] [--history DIR]
        Produce the world's posts, deletes and follows (and a saved history's engagements and social-graph
        events) into the public topics, rebased so that the world's last event happens now (replay.py).
    evaluate --preset P --seed S --checkpoint C --log LOG [--bench PATH]
        The trained ranker against the ground truth on the log's held-out requests (evaluate.py); writes
        world.pairwise_accuracy_vs_truth and world.ndcg10_vs_truth into PATH (bench/results/world.json).

Subcommands are registered in `build_parser` (one `_add_*` function each) so more can be added alongside.
"""

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson
from tqdm import tqdm

from foryou.world.config import PRESETS, preset
from foryou.world.wire import SOCIAL_GRAPH_EVENTS, TWEET_EVENTS

_PROGRESS_EVERY = 1_000  # events written between progress-bar updates


def _generate(args: argparse.Namespace) -> int:
    from foryou.world.history import POSTS_FILE
    from foryou.world.offline import export_posts
    from foryou.world.world import World

    config = preset(args.preset, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"generating {args.preset} world (seed {args.seed})", file=sys.stderr)
    world = World.generate(config)
    counts = {TWEET_EVENTS: 0, SOCIAL_GRAPH_EVENTS: 0}
    progress = tqdm(total=world.event_count(), desc="writing events", unit="event", file=sys.stderr)
    with (out / f"{TWEET_EVENTS}.jsonl").open("wb") as tweets, (
        out / f"{SOCIAL_GRAPH_EVENTS}.jsonl"
    ).open("wb") as social:
        files = {TWEET_EVENTS: tweets, SOCIAL_GRAPH_EVENTS: social}
        for written, event in enumerate(world.events(), start=1):
            files[event.topic].write(orjson.dumps(event.value) + b"\n")
            counts[event.topic] += 1
            if written % _PROGRESS_EVERY == 0:
                progress.update(_PROGRESS_EVERY)
        progress.update(sum(counts.values()) - progress.n)
    progress.close()
    posts = export_posts(world, out / POSTS_FILE)
    manifest = {"preset": args.preset, "config": dataclasses.asdict(config), "events": counts, "posts": posts}
    (out / "world.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    print(f"wrote {counts[TWEET_EVENTS]} tweet-events, {counts[SOCIAL_GRAPH_EVENTS]} social-graph-events and "
          f"the posts file ({posts} posts) to {out}", file=sys.stderr)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from foryou.world.client import ClientBehaviour
    from foryou.world.metrics import OnlineMetrics
    from foryou.world.offline import export_engagement_log
    from foryou.world.simulate import (
        oracle_policy,
        random_policy,
        reverse_chronological_policy,
        simulate_offline,
    )
    from foryou.world.world import World

    world = World.generate(preset(args.preset, seed=args.seed))
    client = ClientBehaviour(world)
    policies = {
        "random": lambda: random_policy(args.seed),
        "chrono": reverse_chronological_policy,
        "oracle": lambda: oracle_policy(client),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    metrics = OnlineMetrics(origin_ms=world.config.start_ms)
    for name in args.policy:
        print(f"simulating {name}: {args.steps} requests", file=sys.stderr)
        result = simulate_offline(world, policies[name](), args.steps, seed=args.seed, policy_name=name,
                                  client=client, metrics=metrics)
        lines = export_engagement_log(result.impressions, result.engagements,
                                      out / f"{name}.engagement-log.jsonl", world.created_ms)
        print(f"  {lines} impressions, {len(result.engagements)} engagement events", file=sys.stderr)
    summary = metrics.summary()
    (out / "summary.txt").write_text(summary + "\n")
    metrics.plot(out / "metrics.png")
    print(summary)
    return 0


def _replay(args: argparse.Namespace) -> int:
    from foryou.settings import kafka_bootstrap
    from foryou.world.config import HOUR_MS
    from foryou.world.experiment import replay, world_anchor, world_stream
    from foryou.world.history import load_history
    from foryou.world.world import World

    world = World.generate(preset(args.preset, seed=args.seed))
    history = load_history(args.history) if args.history else None
    shift = world_anchor(world)
    events = world_stream(
        world, shift, int(args.window_hours * HOUR_MS),
        history.engagements if history else (), history.social_graph_events if history else (),
    )
    bootstrap = kafka_bootstrap()
    counts = replay(bootstrap, events, rate=args.rate)
    print(f"produced {counts} to {bootstrap}; world time = wall time - {shift.offset_ms} ms")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from foryou.benchmarks import merge_results
    from foryou.world.evaluate import format_ranking, ranking_records, ranking_vs_truth
    from foryou.world.world import World

    world = World.generate(preset(args.preset, seed=args.seed))
    report = ranking_vs_truth(world, args.checkpoint, args.log)
    print(format_ranking(report))
    params = {"preset": args.preset, "seed": args.seed}
    records = ranking_records(report, params)
    if args.retrieval_users:
        from foryou.world.retrieval import retrieval_recall_vs_truth, retrieval_records

        recall = retrieval_recall_vs_truth(world, args.checkpoint, args.log, users=args.retrieval_users)
        print(f"retrieval recall@{recall['k']} of the truth's top {recall['k']} of {recall['live_posts']} live "
              f"posts: model {recall['recall']['model']:.4f}, random {recall['recall']['random']:.4f}")
        records += retrieval_records(recall, params)
    print(f"wrote {merge_results(args.bench, records)}")
    return 0


def _add_replay(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    cmd = sub.add_parser("replay", help="produce the world into the public topics, rebased to now")
    cmd.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    cmd.add_argument("--seed", type=int, default=0)
    cmd.add_argument("--rate", type=float, default=None, help="events per second (default: as fast as possible)")
    cmd.add_argument("--window-hours", type=float, default=47.0,
                     help="replay posts of the world's last H hours only (keep it under the 48 h retention)")
    cmd.add_argument("--history", help="a directory saved by the demo's history step, replayed too")
    cmd.set_defaults(run=_replay)


def _add_evaluate(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    cmd = sub.add_parser("evaluate", help="trained ranker vs the ground truth; writes bench records")
    cmd.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    cmd.add_argument("--seed", type=int, default=0)
    cmd.add_argument("--checkpoint", required=True)
    cmd.add_argument("--log", required=True, help="the engagement log the checkpoint was trained on")
    cmd.add_argument("--bench", default="bench/results/world.json")
    cmd.add_argument("--retrieval-users", type=int, default=0,
                     help="also measure retrieval recall@100 of the truth's top 100 live posts for N users")
    cmd.set_defaults(run=_evaluate)


def _add_generate(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    cmd = sub.add_parser("generate", help="write the world's tweet-events and social-graph-events as JSONL")
    cmd.add_argument("--preset", choices=sorted(PRESETS), default="demo")
    cmd.add_argument("--seed", type=int, default=0)
    cmd.add_argument("--out", required=True, help="output directory")
    cmd.set_defaults(run=_generate)


def _add_simulate(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    cmd = sub.add_parser("simulate", help="offline closed loop: compare policies on the ground truth")
    cmd.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    cmd.add_argument("--seed", type=int, default=0)
    cmd.add_argument("--steps", type=int, default=500, help="feed requests per policy")
    cmd.add_argument("--policy", nargs="+", choices=["random", "chrono", "oracle"],
                     default=["random", "chrono", "oracle"])
    cmd.add_argument("--out", required=True, help="output directory")
    cmd.set_defaults(run=_simulate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="foryou world", description="The simulated world of foryou.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_generate(sub)
    _add_simulate(sub)
    _add_replay(sub)
    _add_evaluate(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
