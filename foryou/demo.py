"""`foryou demo` (`make demo`): the whole system on a simulated world, in one command.

1. the broker: the local one (started, and stopped at the end, unless it ran already) or KAFKA_BOOTSTRAP;
2. a small world (`foryou.world`, preset tiny by default) and its users' last hours simulated offline with
   an exploring policy (`foryou.world.history`), giving an engagement log;
3. a small Phoenix trained on that log (`python -m phoenix.train --config demo`), cached under
   .local/demo/cache/<key>: the key hashes the world config, the history length, the training budget and
   the sources that shape them (`_MODEL_SOURCES`), so an unchanged rerun skips the simulation and training;
4. the trained ranker against the ground truth offline (pairwise accuracy, NDCG@10);
5. one closed loop per policy over Kafka (reverse-chron, phoenix-untrained, phoenix-trained, phoenix-online),
   each with its own worker and its own replay of the world and history (see foryou/world/experiment.py),
   with a live progress line; then an explained feed for one user from the trained worker. phoenix-online
   is served from the checkpoint a `foryou trainer` beside its worker keeps publishing: it starts from the
   offline checkpoint (or untrained, `--online-init untrained`) and learns from the loop's own impressions
   and engagements while it serves;
6. the comparison table, plots over time and bench/results/world.json.

With --compare-presets, step 5 runs the trained Phoenix once per pipeline preset instead (seed-2026-01 and
production-2026-10 of streams/defaults.toml: same model, same world, only FORYOU_PRESET differs), and the
records carry the preset as `pipeline_preset`.

Workers are stopped on exit and on Ctrl-C; the broker only if this demo started it.
"""

import argparse
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import orjson
from tqdm import tqdm

from foryou.demo_product import calibration_line, sample_draft_line, start_explorer
from foryou.tables import render_table

REPO = Path(__file__).resolve().parent.parent
BENCH_PATH = REPO / "bench" / "results" / "world.json"
# The sources whose behaviour shapes the history and the trained model (the cache key hashes them).
_MODEL_SOURCES = (
    "topics/actions.py",
    *(f"phoenix/{name}.py" for name in (
        "affinity", "age", "batch", "checkpoint", "config", "content", "examples", "hashing", "log", "model",
        "objective", "optim", "posts", "semantic_ids", "train")),
    *(f"foryou/world/{name}.py" for name in (
        "client", "config", "history", "offline", "population", "posts", "simulate", "truth", "vocab", "wire",
        "world")),
)


def _say(text: str) -> None:
    print(text, flush=True)


def _step(number: int, text: str) -> None:
    _say(f"\n[{number}/6] {text}")


def code_version() -> str:
    """A hash of the sources that shape the history and the model."""
    digest = hashlib.sha256()
    for name in _MODEL_SOURCES:
        digest.update(name.encode())
        digest.update((REPO / name).read_bytes())
    return digest.hexdigest()[:12]


def cache_key(config: Any, history_hours: float, train_steps: int, version: str) -> str:
    import dataclasses

    inputs = {"world": dataclasses.asdict(config), "history_hours": history_hours, "train_steps": train_steps,
              "code": version, "phoenix_config": "demo"}
    return hashlib.sha256(orjson.dumps(inputs, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


class _Broker:
    """The broker for this run: KAFKA_BOOTSTRAP, or the local one (stopped at the end if started here)."""

    def __init__(self) -> None:
        self.started_here = False
        self.bootstrap = ""

    def __enter__(self) -> "_Broker":
        from foryou.kafka_local import local_kafka

        if os.environ.get("KAFKA_BOOTSTRAP"):
            self.bootstrap = os.environ["KAFKA_BOOTSTRAP"]
            _say(f"using the broker at {self.bootstrap} (KAFKA_BOOTSTRAP)")
            return self
        broker = local_kafka()
        running = broker.running_pid() is not None
        self.bootstrap = broker.start()
        self.started_here = not running
        _say(f"{'started' if self.started_here else 'using the running'} local broker at {self.bootstrap}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.started_here:
            from foryou.kafka_local import local_kafka

            local_kafka().stop()
            _say("stopped the local broker")


def _interrupt_on_sigterm() -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def prepare_model(args: argparse.Namespace, world: Any, cache: Path) -> tuple[Any, Path]:
    """The history and the trained checkpoint, from the cache or made now."""
    from foryou.world.history import LOG_FILE, load_history, simulate_history

    checkpoint = cache / "phoenix.ckpt"
    if checkpoint.exists() and (cache / LOG_FILE).exists():
        _say(f"cached: {cache} (same world, history, budget and code)")
        return load_history(cache), checkpoint
    _say(f"simulating the users' last {args.history_hours:g} hours offline (exploring policy)")
    started = time.monotonic()
    history = simulate_history(world, cache / "tmp", hours=args.history_hours, seed=args.seed)
    lines = sum(1 for _ in history.log_path.open("rb"))
    _say(f"  {lines} impressions, {len(history.engagements)} engagement events in {time.monotonic() - started:.0f}s")
    _say(f"training Phoenix (config demo, {args.train_steps} steps) on {history.log_path} with {history.posts_path}")
    partial = cache / "tmp" / "phoenix.ckpt"
    command = [sys.executable, "-m", "phoenix.train", "--data", str(history.log_path), "--out", str(partial),
               "--posts", str(history.posts_path), "--config", "demo", "--steps", str(args.train_steps),
               "--seed", str(args.seed)]
    subprocess.run(command, check=True)
    for path in (cache / "tmp").iterdir():
        path.rename(cache / path.name)
    (cache / "tmp").rmdir()
    return load_history(cache), checkpoint


def _live_line() -> tqdm:
    """One line on stderr redrawn in place with the text given (`set_description_str`) and the time elapsed."""
    return tqdm(bar_format="  {desc} ({elapsed})", file=sys.stderr)


def run_policy(
    spec: Any, *, args: argparse.Namespace, bootstrap: str, world: Any, history: Any, metrics: Any,
    out: Path, on_worker: Callable[[Any], None], offline_checkpoint: Path, explain: bool = False,
) -> tuple[Any, dict[str, Any] | None]:
    """(Trainer,) worker, replay, catch-up, closed loop for one policy; returns the loop result and, when
    `explain`, an explained feed (the processes are left running for the caller to stop)."""
    from foryou.world.client import ClientBehaviour
    from foryou.world.config import HOUR_MS
    from foryou.world.experiment import (
        PHOENIX_ONLINE,
        new_app_id,
        replay,
        start_trainer,
        start_worker,
        wait_ingested,
        world_anchor,
        world_stream,
    )
    from foryou.world.kafka_io import AnswerReader, EventProducer
    from foryou.world.loop import ClosedLoop, LoopConfig

    app_id = new_app_id(spec)
    trainer = None
    if spec.name == PHOENIX_ONLINE:
        checkpoint = Path(spec.env["FORYOU_CHECKPOINT"])
        checkpoint.unlink(missing_ok=True)  # every run learns from its own start
        trainer_args = ["--window-s", str(args.online_window_s), "--publish-every-s", str(args.online_publish_s)]
        if args.online_init == "offline":  # continued with its config, content inputs and codebooks
            # Fine-tuned at a quarter of the offline peak rate: continuing the offline checkpoint on its
            # log's held-out stream, 5e-4 gave window AUC 0.676 vs 0.668 at 2e-3 (= frozen), mean of 7.
            trainer_args += ["--init", str(offline_checkpoint), "--learning-rate", "5e-4"]
        trainer = start_trainer(bootstrap, app_id, checkpoint, out / "workers", trainer_args)
        on_worker(trainer)
        _say(f"  trainer for {app_id}: metrics at {trainer.url}/metrics, log {trainer.log_path}")
    worker = start_worker(bootstrap, spec, out / "workers", app_id=app_id)
    on_worker(worker)
    _say(f"  worker {worker.app_id}: metrics at {worker.url}/metrics, log {worker.log_path}")
    explorer = start_explorer(worker.url) if spec.name == "phoenix-trained" else None
    shift = world_anchor(world)
    events = world_stream(world, shift, int(args.window_hours * HOUR_MS), history.engagements,
                          history.social_graph_events)
    replay(bootstrap, events, label="  replaying world and history")
    worker.wait_ready(300)
    with _live_line() as line:
        wait_ingested(worker, bootstrap,
                      on_wait=lambda lag: line.set_description_str(f"worker catching up: {lag} records to go"))
    if trainer is not None:
        waited = trainer.wait_ready()
        _say(f"  trainer ready (programs compiled; waited {waited:.0f}s more)")
    answers = AnswerReader(bootstrap)
    try:
        loop = ClosedLoop(
            world=world, behaviour=ClientBehaviour(world), answers=answers, producer=EventProducer(bootstrap),
            shift=shift, metrics=metrics, policy=spec.name,
            config=LoopConfig(batch_size=args.batch_size, duration_s=args.loop_seconds, seed=args.seed),
        )

        with _live_line() as line:
            result = loop.run(history.states, on_round=lambda stats: line.set_description_str(stats.line()))
        explained = explained_feed(world, loop, answers, result) if explain else None
        if explorer is not None:
            _say("  " + sample_draft_line(worker.url, world))
    finally:
        answers.close()
        if explorer is not None:
            explorer.stop()
    (out / f"metrics-{spec.name}.prom").write_text(worker.metrics_text())
    return result, explained


def explained_feed(world: Any, loop: Any, answers: Any, result: Any) -> dict[str, Any] | None:
    """An explain=True request for the user who asked most often in the loop."""
    from foryou.world.wire import FEED_REQUESTS, wire_key

    requests: dict[int, int] = {}
    for impression in result.impressions:
        requests[impression.user_id] = requests.get(impression.user_id, 0) + 1
    if not requests:
        return None
    user_id = max(requests, key=requests.__getitem__)
    request = loop.behaviour.feed_request(result.states[user_id], f"explain-{time.time_ns()}", 10)
    request.update(explain=True, is_bottom_request=False, served_ids=[])
    loop.producer.send(FEED_REQUESTS, wire_key(user_id), request)
    loop.producer.flush()
    answer = answers.collect([request["request_id"]], 30).get(request["request_id"])
    if answer is not None:
        answer["world_now_ms"] = loop.now_world_ms()
    return answer


def format_explained(world: Any, answer: dict[str, Any]) -> Iterator[str]:
    from foryou.world.truth import GroundTruth

    user_id, posts = answer["user_id"], answer["posts"]
    yield f"explained feed for user {user_id} (model {answer['model']}, {answer['latency_ms']:.0f} ms):"
    values = np.zeros(len(posts))
    if posts:
        post_ids = np.array([p["post_id"] for p in posts])
        known = world.post_index(post_ids, strict=False) >= 0
        values[known] = GroundTruth(world).expected_value(
            np.full(int(known.sum()), user_id), post_ids[known], answer["world_now_ms"])
    rows = []
    for post, value in zip(posts, values, strict=True):
        explain = post.get("explain") or {}
        probabilities = explain.get("probabilities") or {}
        top = sorted(probabilities.items(), key=lambda item: -item[1])[:3]
        rows.append([
            str(post["rank"]), str(post["post_id"]), str(post["author_id"]), "in" if post["in_network"] else "oon",
            explain.get("source") or "-", _num(explain.get("weighted_score"), 3),
            _num(explain.get("diversity_multiplier"), 2), _num(explain.get("oon_multiplier"), 1),
            f"{post['score']:.3f}", f"{value:.3f}", ", ".join(f"{name} {p:.2f}" for name, p in top),
        ])
    right = ("rank", "post", "author", "net", "source", "weighted", "div", "oon", "score", "truth EV")
    yield render_table([*((title, "right") for title in right), ("top predicted actions", "left")], rows, indent=2)
    stages = (answer.get("explain") or {}).get("stages") or []
    if stages:
        yield "  stages:"
        yield render_table(
            [("kind", "right"), ("name", "left"), ("candidates in -> out", "right"), ("ms", "right"),
             ("removed", "left")],
            (
                [stage["kind"], stage["name"], f"{stage['in']} -> {stage['out']}", f"{stage['ms']:.1f}",
                 ", ".join(f"{reason} {count}" for reason, count in stage["removed"].items())]
                for stage in stages
            ),
            indent=4,
        )


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def comparison_lines(metrics: Any) -> Iterator[str]:
    from foryou.world.evaluate import ENGAGEMENT_RATIO_TARGET
    from foryou.world.experiment import PHOENIX_ONLINE, PHOENIX_TRAINED, REVERSE_CHRON

    policies = metrics.policies()
    if PHOENIX_ONLINE in policies and REVERSE_CHRON in policies:
        windows = metrics.windows(PHOENIX_ONLINE)
        chrono = metrics.total(REVERSE_CHRON).engagements_per_impression
        if windows:
            first, last = windows[0].engagements_per_impression, windows[-1].engagements_per_impression
            verdict = "beats" if last > chrono else "does NOT beat"
            yield (f"phoenix-online engagements per impression: first window {first:.4f}, last window {last:.4f}"
                   f" ({len(windows)} windows); the last {verdict} reverse-chron's {chrono:.4f}")
    seed, production = f"{PHOENIX_TRAINED}@seed-2026-01", f"{PHOENIX_TRAINED}@production-2026-10"
    if seed in policies and production in policies:
        old, new = metrics.total(seed), metrics.total(production)
        yield (f"production-2026-10 vs seed-2026-01 (same trained model): engagements per impression "
               f"{new.engagements_per_impression:.4f} vs {old.engagements_per_impression:.4f}, negatives "
               f"{new.negatives_per_impression:.4f} vs {old.negatives_per_impression:.4f}, author diversity "
               f"{new.author_diversity:.3f} vs {old.author_diversity:.3f}, out-of-network share "
               f"{new.out_of_network_share:.3f} vs {old.out_of_network_share:.3f}, cold-start exposure "
               f"{new.cold_start_share:.4f} vs {old.cold_start_share:.4f}")
    if PHOENIX_TRAINED in policies and REVERSE_CHRON in policies:
        trained, chrono = metrics.total(PHOENIX_TRAINED), metrics.total(REVERSE_CHRON)
        ratio = trained.engagements_per_impression / chrono.engagements_per_impression
        fewer = trained.negatives_per_impression < chrono.negatives_per_impression
        verdict = "met" if ratio >= ENGAGEMENT_RATIO_TARGET and fewer else "NOT met"
        yield (f"phoenix-trained vs reverse-chron: {ratio:.2f}x engagements per impression, negatives per "
               f"impression {trained.negatives_per_impression:.4f} vs {chrono.negatives_per_impression:.4f}"
               f" (target >= {ENGAGEMENT_RATIO_TARGET}x with fewer negatives: {verdict})")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="foryou demo", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", help="world preset (tiny, demo, large)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--history-hours", type=float, default=36.0,
                        help="hours of the world's end simulated offline for training and history")
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--loop-seconds", type=float, default=60.0, help="closed-loop time per policy")
    parser.add_argument("--batch-size", type=int, default=24, help="feed requests in flight per round")
    parser.add_argument("--window-hours", type=float, default=47.0,
                        help="posts of the world's last H hours are replayed (under the 48 h retention)")
    parser.add_argument("--policies", nargs="+",
                        default=["reverse-chron", "phoenix-untrained", "phoenix-trained", "phoenix-online"])
    parser.add_argument("--online-init", choices=("offline", "untrained"), default="offline",
                        help="where the online policy's trainer starts: the offline checkpoint or an untrained model")
    parser.add_argument("--online-window-s", type=float, default=10.0,
                        help="seconds a served post waits for engagement before the trainer counts it negative")
    parser.add_argument("--online-publish-s", type=float, default=15.0, help="the trainer's checkpoint interval")
    parser.add_argument("--compare-presets", action="store_true",
                        help="run the trained Phoenix once per pipeline preset instead of the policies")
    parser.add_argument("--presets", nargs="+", default=["seed-2026-01", "production-2026-10"],
                        help="pipeline presets compared by --compare-presets (streams/defaults.toml)")
    parser.add_argument("--out", type=Path, default=None, help="results directory (default .local/demo)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from foryou.settings import state_dir

    args = parse_args(argv)
    out = (args.out or state_dir() / "demo").resolve()
    out.mkdir(parents=True, exist_ok=True)
    _interrupt_on_sigterm()
    workers: list[Any] = []
    started = time.monotonic()
    try:
        with _Broker() as broker:
            try:
                return _run(args, broker.bootstrap, out, workers)
            finally:
                for worker in workers:
                    worker.stop()
                if workers:
                    _say(f"stopped {len(workers)} worker(s)")
    except KeyboardInterrupt:
        _say("\ninterrupted: workers stopped")
        return 130
    finally:
        _say(f"demo time {time.monotonic() - started:.0f}s")


def _run(args: argparse.Namespace, bootstrap: str, out: Path, workers: list[Any]) -> int:
    from foryou.benchmarks import merge_results
    from foryou.world.config import preset
    from foryou.world.evaluate import format_ranking, online_records, ranking_records, ranking_vs_truth
    from foryou.world.experiment import PHOENIX_TRAINED, policy_specs, preset_specs
    from foryou.world.kafka_io import ensure_public_topics
    from foryou.world.metrics import OnlineMetrics
    from foryou.world.world import World

    _step(1, "public topics")
    created = ensure_public_topics(bootstrap)
    _say(f"  created {', '.join(created)}" if created else "  all present")
    _step(2, f"world '{args.preset}' (seed {args.seed})")
    config = preset(args.preset, seed=args.seed)
    world = World.generate(config)
    _say(f"  {world.num_users} users, {world.num_posts} posts over {config.duration_ms / 86_400_000:g} days, "
         f"{world.event_count()} events")
    _step(3, "history and a trained Phoenix")
    cache = out / "cache" / cache_key(config, args.history_hours, args.train_steps, code_version())
    cache.mkdir(parents=True, exist_ok=True)
    history, checkpoint = prepare_model(args, world, cache)
    _step(4, "offline: trained ranking vs the ground truth (held-out requests)")
    ranking_path = cache / "ranking.json"
    if ranking_path.exists():
        ranking = orjson.loads(ranking_path.read_bytes())
    else:
        ranking = ranking_vs_truth(world, checkpoint, history.log_path)
        ranking_path.write_bytes(orjson.dumps(ranking, option=orjson.OPT_INDENT_2))
    _say(format_ranking(ranking))
    _say(calibration_line(checkpoint, history.log_path, out))
    _step(5, f"closed loops over Kafka, {args.loop_seconds:g}s per policy")
    metrics = OnlineMetrics(window_ms=15_000)
    explained = None
    started = len(workers)
    if args.compare_presets:
        specs = preset_specs(checkpoint, args.presets)
        explain_policy = specs[-1].name
    else:
        specs = [s for s in policy_specs(checkpoint, out / "online" / "phoenix-online.ckpt") if s.name in args.policies]
        explain_policy = PHOENIX_TRAINED
    for spec in specs:
        _say(f"policy {spec.name}")
        try:
            _, answer = run_policy(spec, args=args, bootstrap=bootstrap, world=world, history=history,
                                   metrics=metrics, out=out, on_worker=workers.append, offline_checkpoint=checkpoint,
                                   explain=spec.name == explain_policy)
        finally:
            while len(workers) > started:
                workers.pop().stop()
        if answer is not None:
            explained = answer
    _step(6, "results")
    if explained is not None:
        for line in format_explained(world, explained):
            _say(line)
    _say("")
    _say(metrics.summary())
    for line in comparison_lines(metrics):
        _say(line)
    (out / "summary.txt").write_text(metrics.summary() + "\n\n" + format_ranking(ranking) + "\n")
    plot = metrics.plot(out / "metrics.png")
    params = {"preset": args.preset, "seed": args.seed, "loop_seconds": args.loop_seconds,
              "train_steps": args.train_steps, "history_hours": args.history_hours,
              "online_init": args.online_init, "online_window_s": args.online_window_s,
              "online_publish_s": args.online_publish_s}
    records = online_records(metrics, params)
    if not args.compare_presets:  # the offline ranking belongs to the policy comparison's records
        records += ranking_records(ranking, params)
    bench = merge_results(BENCH_PATH, records)
    _say(f"\nplots: {plot}\ntable: {out / 'summary.txt'}\nbench records: {bench}")
    _say(f"worker metrics (Prometheus text, scraped from each worker's /metrics before it stopped): "
         f"{out}/metrics-<policy>.prom")
    return 0


if __name__ == "__main__":
    sys.exit(main())
