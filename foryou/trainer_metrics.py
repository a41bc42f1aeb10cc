"""Prometheus metrics of `foryou trainer` (its own /metrics port; the dashboard's Trainer row reads them).

They live in prometheus-client's default registry of the trainer process.
"""

from prometheus_client import Counter, Gauge

ready = Gauge("foryou_trainer_ready", "1 once the trainer has compiled its programs and consumes its inputs.")
records = Counter("foryou_trainer_records_total", "Records the trainer read, by topic.", ["topic"])
invalid_records = Counter(
    "foryou_trainer_invalid_records_total", "Records the trainer could not decode and skipped, by topic.", ["topic"]
)
lines = Counter(
    "foryou_trainer_lines_total",
    "Served impressions whose window closed, by label (positive: any non-negative action joined).",
    ["label"],
)
unjoined_engagements = Counter(
    "foryou_trainer_unjoined_engagements_total",
    "Engagements no open impression was waiting for (history only: other surfaces, before start, or late).",
)
pending_impressions = Gauge("foryou_trainer_pending_impressions", "Impressions waiting for their window to close.")
steps = Counter("foryou_trainer_steps_total", "Optimiser steps taken.")
examples = Counter("foryou_trainer_examples_total", "Request examples added to the training buffer.")
loss = Gauge("foryou_trainer_loss", "Mean loss of the latest training round, by part (ranker, retrieval).", ["part"])
window_auc = Gauge(
    "foryou_trainer_window_auc",
    "AUC (summed positive-head probabilities vs any positive action) on the latest closed lines, scored before "
    "the model trained on them.",
)
window_lines = Gauge("foryou_trainer_window_lines", "Lines in the latest progressive-validation window.")
checkpoints = Counter("foryou_trainer_checkpoints_total", "Checkpoints published.")
checkpoint_age = Gauge("foryou_trainer_checkpoint_age_seconds", "Seconds since the last checkpoint was published.")
model_info = Gauge("foryou_trainer_model_info", "The version of the last checkpoint published (value 1).", ["version"])
