"""`foryou bench weights-world`: tuned scoring weights against the configured ones, in the world's closed loop.

    foryou bench weights-world --checkpoint CKPT --history DIR --weights FILE [--loop-seconds S]

Runs the demo's closed loop over Kafka twice with the same trained checkpoint, world and history (each run its
own worker, replay and loop, as `foryou demo` does): once with the configured weights (streams/defaults.toml)
and once with FILE (a FORYOU_CONFIG file, e.g. the weights.toml `foryou calibrate --tune-weights` writes).
Prints the demo's comparison table; records `world.tuned_weights` engagements and negatives per impression
of both runs and their ratios in bench/results/weights-world.json. Uses the local broker (started and stopped
here unless it runs already) or KAFKA_BOOTSTRAP.
"""

import argparse
from pathlib import Path

from foryou.benchmarks import record, write_results


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="foryou bench weights-world", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--history", type=Path, required=True, help="the history directory the model was trained on")
    parser.add_argument("--weights", type=Path, required=True, help="a FORYOU_CONFIG file with the tuned weights")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--loop-seconds", type=float, default=60.0)
    parser.add_argument("--batch-size", type=int, default=24)
    parser.add_argument("--window-hours", type=float, default=47.0)
    parser.add_argument("--out", type=Path, default=Path(".local/weights-world"))
    parser.add_argument("--out-dir", type=Path, default=None, help="benchmark records (default bench/results)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from foryou.demo import _Broker, run_policy
    from foryou.world.config import preset
    from foryou.world.experiment import PolicySpec
    from foryou.world.history import load_history
    from foryou.world.kafka_io import ensure_public_topics
    from foryou.world.metrics import OnlineMetrics
    from foryou.world.world import World

    args = _parse(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    world = World.generate(preset(args.preset, seed=args.seed))
    history = load_history(args.history)
    metrics = OnlineMetrics(window_ms=15_000)
    base = {"FORYOU_POLICY": "phoenix", "FORYOU_CHECKPOINT": str(args.checkpoint.resolve())}
    specs = [PolicySpec("configured-weights", {**base, "FORYOU_CONFIG": ""}),
             PolicySpec("tuned-weights", {**base, "FORYOU_CONFIG": str(args.weights.resolve())})]
    workers: list = []
    with _Broker() as broker:
        ensure_public_topics(broker.bootstrap)
        try:
            for spec in specs:
                print(f"policy {spec.name}", flush=True)
                run_policy(spec, args=args, bootstrap=broker.bootstrap, world=world, history=history,
                           metrics=metrics, out=args.out, on_worker=workers.append)
                workers.pop().stop()
        finally:
            for worker in workers:
                worker.stop()
    print(metrics.summary())
    configured, tuned = metrics.total("configured-weights"), metrics.total("tuned-weights")
    params = {"preset": args.preset, "seed": args.seed, "loop_seconds": args.loop_seconds,
              "weights": str(args.weights), "checkpoint": str(args.checkpoint),
              "configured": {"engagements_per_impression": configured.engagements_per_impression,
                             "negatives_per_impression": configured.negatives_per_impression,
                             "impressions": configured.impressions},
              "tuned": {"engagements_per_impression": tuned.engagements_per_impression,
                        "negatives_per_impression": tuned.negatives_per_impression, "impressions": tuned.impressions},
              "machine": "2 cores shared with other jobs"}
    ratio = tuned.engagements_per_impression / configured.engagements_per_impression
    neg_ratio = tuned.negatives_per_impression / max(configured.negatives_per_impression, 1e-12)
    records = [record("world.tuned_weights", "engagement_ratio", ratio, "ratio", 1.0, **params),
               record("world.tuned_weights", "negative_ratio", neg_ratio, "ratio", 1.0, **params)]
    path = write_results("weights-world", records, args.out_dir) if args.out_dir else write_results(
        "weights-world", records)
    print(f"tuned / configured weights: engagements per impression x{ratio:.3f}, negatives per impression "
          f"x{neg_ratio:.3f} -> {path}")
    return 0
