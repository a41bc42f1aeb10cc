"""`foryou calibrate`: how well a checkpoint's probabilities match what users did, a per-head calibration
saved with the checkpoint (and so applied by every worker serving it), and scoring weights tuned on the logs.

    foryou calibrate --checkpoint CKPT (--data LOG | --from-topics) [--save] [--tune-weights] [--out DIR]

Data: an engagement log (the `phoenix.log` format; `foryou world` and the demo export one), or the live
topics: every `impressions` record joined with the `engagement-events` on the same (user, post) and each
post's creation time from `tweet-events` (read from the start to their current end).

Predictions: the checkpoint scores the log's impressions that it was not trained on (its recorded split, as
`foryou eval`; a log it never saw is split by the same held-out fraction), each with the user's history as
of the impression. Those impressions are split in time: the earlier half fits the calibration and tunes
the weights, the later half measures before and after (so every reported number is out of sample).
Writes report.json, reliability.png (per action: predicted vs observed, before and after) and, with
--tune-weights, weights.toml (a FORYOU_CONFIG file). With --save the checkpoint is rewritten in place with
the calibration in its meta; a running worker picks it up on its next reload check.
"""

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from foryou.tables import render_table
from topics.actions import PHOENIX_ACTIONS
from topics.validation import InvalidRecord, decode_engagement, decode_impression, decode_tweet_event


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="foryou calibrate", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="an engagement log (JSONL)")
    source.add_argument("--from-topics", action="store_true", help="read impressions and engagements from Kafka")
    parser.add_argument("--out", type=Path, default=Path(".local/calibrate"))
    parser.add_argument("--save", action="store_true", help="write the calibration into the checkpoint")
    parser.add_argument("--tune-weights", action="store_true", help="search scoring weights (scipy), weights.toml")
    parser.add_argument("--negative-penalty", type=float, default=5.0, help="tuning: cost of a negative action")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    for path in (args.checkpoint, args.data):
        if path is not None and not path.is_file():
            parser.error(f"no such file: {path}")
    return args


def log_from_topics(bootstrap: str, path: Path, timeout_s: float = 60.0) -> int:
    """The engagement log of everything on `impressions` and `engagement-events` so far (world.offline's
    join), with post creation times from `tweet-events`."""
    from foryou.world.offline import Impression, export_engagement_log

    records = read_topics(bootstrap, ["impressions", "engagement-events", "tweet-events"], timeout_s)
    created = {v["post_id"]: v["created_at_ms"] for v in records["tweet-events"] if v.get("type") == "create"}
    impressions = [Impression.from_wire(v) for v in records["impressions"]]
    return export_engagement_log(
        impressions, records["engagement-events"], path,
        created_ms=lambda ids: np.array([created.get(int(i), 0) or 0 for i in ids], np.int64),
    )


# Topics read here are decoded by the wire contract, as the workers decode them.
_DECODERS: dict[str, Callable[[bytes | None], Any]] = {
    "impressions": decode_impression,
    "engagement-events": decode_engagement,
    "tweet-events": decode_tweet_event,
}


def read_topics(bootstrap: str, topics: list[str], timeout_s: float) -> dict[str, list[dict[str, Any]]]:
    """Every JSON value on these topics from their start to their end as of now (malformed ones skipped:
    the worker dead-letters those)."""
    import time

    from confluent_kafka import Consumer, TopicPartition

    from foryou.settings import librdkafka_config

    config = {"group.id": "foryou-calibrate", "enable.auto.commit": False}
    consumer = Consumer(librdkafka_config(bootstrap, config=config))
    try:
        assignment, remaining = [], {}
        for topic in topics:
            for p in consumer.list_topics(topic, timeout=30).topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
                if high > low:
                    assignment.append(TopicPartition(topic, p, low))
                    remaining[(topic, p)] = high
        consumer.assign(assignment)
        values: dict[str, list[dict[str, Any]]] = {t: [] for t in topics}
        deadline = time.monotonic() + timeout_s
        while remaining and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            key = (message.topic(), message.partition())
            if key in remaining and message.offset() >= remaining[key] - 1:
                del remaining[key]
            decode = _DECODERS.get(message.topic())
            try:
                record = decode(message.value()) if decode else orjson.loads(message.value())
            except (InvalidRecord, orjson.JSONDecodeError):
                continue  # the workers dead-letter what the contract refuses
            values[message.topic()].append(record.to_dict() if decode else record)
        if remaining:
            raise TimeoutError(f"topics not read to their end within {timeout_s:.0f}s: {sorted(remaining)}")
        return values
    finally:
        consumer.close()


def held_out_predictions(checkpoint: Path, log: Path) -> dict[str, Any]:
    """Probabilities, labels, mask, logged rank and time of every held-out example of the log."""
    from phoenix.checkpoint import load_checkpoint
    from phoenix.evaluate import model_outputs
    from phoenix.examples import NegativeSampling
    from phoenix.log import file_sha256, read_log
    from phoenix.train import prepare

    ckpt = load_checkpoint(checkpoint)
    meta = ckpt.meta
    same = meta.get("data_sha256") == file_sha256(log)
    num_candidates = int(meta.get("options", {}).get("num_candidates", 8))
    sampled = meta.get("negatives_sampled")
    negatives = NegativeSampling(**sampled) if sampled else NegativeSampling(4, 3 * 3_600_000, 0)
    data = prepare(read_log(log), num_candidates, float(meta.get("holdout_fraction", 0.1)), negatives,
                   split_ts_ms=int(meta["split_ts_ms"]) if same and "split_ts_ms" in meta else None)
    examples = data.held_out_examples
    probs, _ = model_outputs(ckpt.params, ckpt.cfg, data, num_candidates)
    n = len(examples)
    labels = np.zeros((n, num_candidates, len(PHOENIX_ACTIONS)), np.float32)
    mask = np.zeros((n, num_candidates), bool)
    rank = np.ones((n, num_candidates), np.int64)
    lines_before: dict[int, int] = {}
    for i, ex in enumerate(examples):
        k = len(ex.candidates)
        labels[i, :k], mask[i, :k] = ex.labels, True
        start = lines_before.get(ex.group, 0)  # a group's examples are its served lines in order, chunked
        rank[i] = start + np.arange(1, num_candidates + 1)
        lines_before[ex.group] = start + k
    return {"ckpt": ckpt, "probs": probs, "labels": labels, "mask": mask, "rank": rank,
            "ts": np.array([ex.ts_ms for ex in examples]), "groups": np.array([ex.group for ex in examples])}


def pairwise(probs: np.ndarray, labels: np.ndarray, mask: np.ndarray, groups: np.ndarray, weights: np.ndarray) -> float:
    """Pairwise ranking accuracy of the weighted score within request groups (engaged vs not engaged)."""
    from phoenix.metrics import pairwise_accuracy
    from scoring.tuning import NEGATIVE

    by_group: dict[int, tuple[list[float], list[bool]]] = {}
    scores = probs @ weights
    engaged = labels[..., ~NEGATIVE].any(-1)
    for i, g in enumerate(groups):
        s, y = by_group.setdefault(int(g), ([], []))
        s.extend(scores[i][mask[i]].tolist())
        y.extend(engaged[i][mask[i]].tolist())
    return pairwise_accuracy([np.array(s) for s, _ in by_group.values()], [np.array(y) for _, y in by_group.values()])


def plot_reliability(before: dict, after: dict, path: Path) -> Path:
    from matplotlib.figure import Figure

    shown = [a for a in PHOENIX_ACTIONS if before["actions"][a]["positives"]][:12]
    figure = Figure(figsize=(16, 9), layout="constrained")
    axes = figure.subplots(3, 4).ravel()
    for ax, action in zip(axes, shown, strict=False):
        for label, report, style in (("model", before, "o-"), ("calibrated", after, "s-")):
            curve = report["actions"][action]["reliability"]
            ax.plot(curve["mean_prediction"], curve["observed_rate"], style, label=label, markersize=3)
        top = max(max(before["actions"][action]["reliability"]["mean_prediction"]),
                  max(before["actions"][action]["reliability"]["observed_rate"]), 0.05)
        ax.plot([0, top], [0, top], "k:", linewidth=0.8)
        ax.set_title(f"{action}: ECE {before['actions'][action]['ece']:.3f} -> {after['actions'][action]['ece']:.3f}")
        ax.set_xlabel("predicted")
        ax.set_ylabel("observed")
    for ax in axes[len(shown) :]:
        ax.axis("off")
    if shown:
        axes[0].legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=70)
    return path


def calibrate(args: argparse.Namespace) -> dict[str, Any]:
    from phoenix.calibration import calibration_report, fit_isotonic
    from phoenix.checkpoint import save_checkpoint
    from scoring.tuning import Slates, tune_weights, weights_toml
    from scoring.weighted import weight_vector
    from streams.config import load_config

    args.out.mkdir(parents=True, exist_ok=True)
    log = args.data
    if args.from_topics:
        from foryou.settings import kafka_bootstrap

        log = args.out / "engagement-log.jsonl"
        log_from_topics(kafka_bootstrap(), log)
    data = held_out_predictions(args.checkpoint, log)
    probs, labels, mask = data["probs"], data["labels"], data["mask"]
    order = np.argsort(data["ts"], kind="stable")
    fit_idx, test_idx = order[: len(order) // 2], order[len(order) // 2 :]
    if not len(fit_idx) or not len(test_idx):
        raise SystemExit("too few held-out impressions to fit and measure a calibration")
    calibration = fit_isotonic(probs[fit_idx][mask[fit_idx]], labels[fit_idx][mask[fit_idx]])
    calibrated = calibration.apply(probs.reshape(-1, len(PHOENIX_ACTIONS))).reshape(probs.shape)
    before = calibration_report(probs[test_idx][mask[test_idx]], labels[test_idx][mask[test_idx]])
    after = calibration_report(calibrated[test_idx][mask[test_idx]], labels[test_idx][mask[test_idx]])
    config = load_config()
    weights = weight_vector(config.weights)[: len(PHOENIX_ACTIONS)]  # the model's heads
    groups = data["groups"]
    report: dict[str, Any] = {
        "checkpoint": str(args.checkpoint),
        "version": data["ckpt"].version,
        "log": str(log),
        "fit_impressions": int(mask[fit_idx].sum()),
        "test_impressions": int(mask[test_idx].sum()),
        "calibration": calibration.describe(),
        "mean_ece": {"before": before["mean_ece"], "after": after["mean_ece"]},
        "pairwise_accuracy": {
            "before": pairwise(probs[test_idx], labels[test_idx], mask[test_idx], groups[test_idx], weights),
            "after": pairwise(calibrated[test_idx], labels[test_idx], mask[test_idx], groups[test_idx], weights),
        },
        "actions": {a: {"positives": before["actions"][a]["positives"],
                        "observed_rate": before["actions"][a]["observed_rate"],
                        "rate_error": {"before": before["actions"][a]["rate_error"],
                                       "after": after["actions"][a]["rate_error"]},
                        "ece": {"before": before["actions"][a]["ece"], "after": after["actions"][a]["ece"]}}
                    for a in PHOENIX_ACTIONS},
        "reliability_png": str(plot_reliability(before, after, args.out / "reliability.png")),
    }
    if args.tune_weights:
        slates = Slates(calibrated, labels, mask, data["rank"])
        tuning = tune_weights(slates.take(fit_idx), slates.take(test_idx), config.weights,
                              negative_penalty=args.negative_penalty)
        (args.out / "weights.toml").write_text(weights_toml(tuning.tuned))
        report["weight_tuning"] = {
            "objective": f"positive actions - {args.negative_penalty:g} x negative actions per examined impression",
            "estimator": "SNIPS, position-based examination 1/log2(rank+1), logged served order as propensity",
            "logged_value": tuning.logged_value, "start_value": tuning.start_value,
            "tuned_value": tuning.tuned_value, "effective_sample_size": tuning.tuned_ess,
            "evaluations": tuning.evaluations, "tuned": tuning.tuned,
            "pairwise_accuracy_tuned": pairwise(calibrated[test_idx], labels[test_idx], mask[test_idx],
                                                groups[test_idx], np.array([tuning.tuned[a] for a in PHOENIX_ACTIONS])),
            "weights_toml": str(args.out / "weights.toml"),
        }
    if args.save:
        ckpt = data["ckpt"]
        version = save_checkpoint(args.checkpoint, ckpt.params, ckpt.cfg, {**ckpt.meta, **{
            "calibration": calibration.to_meta()}})
        report["saved_version"] = version
    (args.out / "report.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    return report


def summary_line(report: dict[str, Any]) -> str:
    ece, pairs = report["mean_ece"], report["pairwise_accuracy"]
    fav = report["actions"]["favorite"]["rate_error"]
    return (f"calibration ({report['calibration']}): mean ECE {ece['before']:.4f} -> {ece['after']:.4f}, "
            f"favorite rate error {fav['before']:+.4f} -> {fav['after']:+.4f}, pairwise accuracy "
            f"{pairs['before']:.3f} -> {pairs['after']:.3f} on {report['test_impressions']} held-out impressions")


def format_report(report: dict[str, Any]) -> str:
    lines = [summary_line(report), render_table(
        [("action", "left"), ("positives", "right"), ("rate", "right"), ("rate err before", "right"),
         ("after", "right"), ("ECE before", "right"), ("after", "right")],
        (
            [a, str(v["positives"]), f"{v['observed_rate']:.4f}", f"{v['rate_error']['before']:+.4f}",
             f"{v['rate_error']['after']:+.4f}", f"{v['ece']['before']:.4f}", f"{v['ece']['after']:.4f}"]
            for a, v in report["actions"].items()
            if v["positives"]
        ),
    )]
    tuning = report.get("weight_tuning")
    if tuning:
        lines.append(f"weights tuned ({tuning['objective']}; {tuning['estimator']}): estimated "
                     f"{tuning['start_value']:.4f} -> {tuning['tuned_value']:.4f} "
                     f"(logged {tuning['logged_value']:.4f}, ESS {tuning['effective_sample_size']:.0f}); "
                     f"{tuning['weights_toml']}")
    lines.append(f"reliability curves: {report['reliability_png']}")
    if "saved_version" in report:
        lines.append(f"saved in the checkpoint: version {report['saved_version']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    report = calibrate(args)
    sys.stdout.write(orjson.dumps(report).decode() + "\n" if args.json else format_report(report) + "\n")
    return 0
