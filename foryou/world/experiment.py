"""One policy's run over Kafka: its own worker, its own replay of the world, its own closed loop.

Isolation. Every policy run gets a new app id (so its own consumer group, tables and internal topics), and
before its worker starts, the group's offsets on the public topics are committed at their current end
(`kafka_io.commit_offsets`). The run then replays the world (and the users' history) into the public
topics, rebased so that the world ends now. Its worker therefore sees exactly one copy of the world, with
the world's own ids: nothing of earlier policy runs, earlier demos or tests on the same broker (their
requests, engagements and follows come before its start offsets). Runs go one after another, so a worker
never reads another run's requests either, and each one has the whole machine. Keeping the world's ids
means a Phoenix checkpoint trained on the world's log serves every run, and is cached across runs.

The cost is one replay (and its ingestion) per policy. The alternative, one replay with a copy of the world
per policy under an id offset, would make every worker ingest every copy (the public topics are shared) and
retrieve other copies' posts, and a trained model would have to be trained on its copy's ids.
"""

import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from foryou.processes import TrainerProcess, WorkerProcess
from foryou.world.kafka_io import WORKER_INPUTS, EventProducer, commit_offsets, end_offsets
from foryou.world.replay import TimeShift, merge_by_time, rebase_events, replay_events, world_end_ms
from foryou.world.wire import ENGAGEMENT_EVENTS, SOCIAL_GRAPH_EVENTS, WireValue, WorldEvent
from foryou.world.world import World
from topics.specs import IMPRESSIONS

REVERSE_CHRON = "reverse-chron"
PHOENIX_UNTRAINED = "phoenix-untrained"
PHOENIX_TRAINED = "phoenix-trained"
PHOENIX_ONLINE = "phoenix-online"  # served from the checkpoint a `foryou trainer` keeps publishing


@dataclass(frozen=True)
class PolicySpec:
    """A policy is a worker configuration: FORYOU_POLICY, and for Phoenix the checkpoint (none = untrained).
    Every Phoenix policy ranks with the pipeline's configured weights (streams/defaults.toml)."""

    name: str
    env: dict[str, str] = field(default_factory=dict)


def preset_specs(checkpoint: str | Path, presets: Iterable[str]) -> list[PolicySpec]:
    """The trained Phoenix under each pipeline preset (streams/defaults.toml): the same model and world,
    only FORYOU_PRESET differs. Named phoenix-trained@<preset>."""
    return [
        PolicySpec(
            f"{PHOENIX_TRAINED}@{name}",
            {"FORYOU_POLICY": "phoenix", "FORYOU_CHECKPOINT": str(checkpoint), "FORYOU_PRESET": name},
        )
        for name in presets
    ]


def policy_specs(checkpoint: str | Path | None, online_checkpoint: str | Path | None = None) -> list[PolicySpec]:
    specs = [
        PolicySpec(REVERSE_CHRON, {"FORYOU_POLICY": "reverse-chron", "FORYOU_CHECKPOINT": ""}),
        PolicySpec(PHOENIX_UNTRAINED, {"FORYOU_POLICY": "phoenix", "FORYOU_CHECKPOINT": ""}),
    ]
    if checkpoint is not None:
        specs.append(PolicySpec(PHOENIX_TRAINED, {"FORYOU_POLICY": "phoenix", "FORYOU_CHECKPOINT": str(checkpoint)}))
    if online_checkpoint is not None:
        specs.append(
            PolicySpec(PHOENIX_ONLINE, {"FORYOU_POLICY": "phoenix", "FORYOU_CHECKPOINT": str(online_checkpoint)})
        )
    return specs


def world_stream(
    world: World, shift: TimeShift, window_ms: int | None,
    history_engagements: Iterable[WireValue] = (), history_social: Iterable[WireValue] = (),
) -> list[WorldEvent]:
    """The world's replay plus the users' history (engagements, client-made follows/blocks), rebased and
    merged in time order."""
    return merge_by_time(
        replay_events(world, shift, window_ms),
        rebase_events(SOCIAL_GRAPH_EVENTS, history_social, shift),
        rebase_events(ENGAGEMENT_EVENTS, history_engagements, shift),
    )


def new_app_id(spec: PolicySpec) -> str:
    """A fresh app id for a run of `spec`, in the characters Kafka allows in the topic names it prefixes
    ([A-Za-z0-9._-]; preset policies are named phoenix-trained@<preset>)."""
    return f"foryou-world-{re.sub(r'[^A-Za-z0-9._-]', '-', spec.name)}-{uuid.uuid4().hex[:8]}"


def start_worker(
    bootstrap: str, spec: PolicySpec, run_dir: Path, *, app_id: str | None = None, env: dict[str, str] | None = None,
) -> WorkerProcess:
    """A worker for `spec` that will read the public topics from their current end (module docstring)."""
    from agents.topology import ensure_topics
    from foryou.settings import Settings

    # Kafka topic names (the app id prefixes the internal ones) allow only [A-Za-z0-9._-].
    app_id = app_id or new_app_id(spec)
    for _ in ensure_topics(Settings(bootstrap=bootstrap, app_id=app_id, partitions=4)):
        pass
    commit_offsets(bootstrap, app_id, end_offsets(bootstrap, WORKER_INPUTS))
    worker = WorkerProcess(
        bootstrap=bootstrap,
        app_id=app_id,
        data_dir=run_dir / app_id,
        log_path=run_dir / f"{app_id}.log",
        env={"FORYOU_PARTITIONS": "4", **spec.env, **(env or {})},
    )
    return worker.start()


def start_trainer(
    bootstrap: str, app_id: str, checkpoint: Path, run_dir: Path, args: list[str] | None = None
) -> TrainerProcess:
    """A `foryou trainer` for the worker of `app_id`, reading impressions and engagements from their current
    end (so it learns only from this run), publishing to `checkpoint`; returns once it has published."""
    from agents.topology import ensure_topics
    from foryou.settings import Settings

    for _ in ensure_topics(Settings(bootstrap=bootstrap, app_id=app_id, partitions=4)):
        pass  # its post log
    commit_offsets(bootstrap, f"{app_id}-trainer", end_offsets(bootstrap, (IMPRESSIONS, ENGAGEMENT_EVENTS)))
    trainer = TrainerProcess(
        bootstrap=bootstrap, app_id=app_id, checkpoint=checkpoint, log_path=run_dir / f"{app_id}-trainer.log",
        args=args,
    ).start()
    trainer.wait_published()
    return trainer


def replay(
    bootstrap: str, events: list[WorldEvent], rate: float | None = None, label: str = "replaying world"
) -> dict[str, int]:
    progress = tqdm(total=len(events), desc=label, unit="event", file=sys.stderr)
    try:
        return EventProducer(bootstrap).send_events(events, rate=rate, progress=progress)
    finally:
        progress.close()


def wait_ingested(
    worker: WorkerProcess, bootstrap: str, timeout_s: float = 600.0,
    on_wait: Callable[[int], None] | None = None,
) -> float:
    """Until the worker has consumed every public input and its own user-events (lag 0, as committed)
    and its post store stopped growing; returns the seconds waited. `on_wait(lag)` reports progress."""
    from agents.topology import consumer_lag

    started = time.monotonic()
    topics = [*WORKER_INPUTS, f"{worker.app_id}-user-events"]
    last_posts = -1
    while time.monotonic() - started < timeout_s:
        if worker.proc is not None and worker.proc.poll() is not None:
            raise RuntimeError(f"worker exited with {worker.proc.returncode}:\n{worker.tail()}")
        lag = sum(consumer_lag(bootstrap, worker.app_id, topics).values())
        status = worker.status() or {}
        posts = int(status.get("posts", 0))
        if on_wait is not None:
            on_wait(lag)
        if lag == 0 and status.get("ready") and posts == last_posts:
            return time.monotonic() - started
        last_posts = posts
        time.sleep(1.0)
    raise TimeoutError(f"worker {worker.app_id} did not catch up within {timeout_s:.0f}s")


def world_anchor(world: World) -> TimeShift:
    """The shift that makes the world's last event happen now."""
    return TimeShift.anchor(world_end_ms(world), int(time.time() * 1000))
