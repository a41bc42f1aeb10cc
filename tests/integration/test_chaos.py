"""Chaos under load (issue 12): a worker SIGKILLed five times, a worker frozen past its session timeout (so
its group membership expires and it rejoins) three times, and the broker paused for 40 s.

Load is a plain librdkafka producer sending engagements, graph changes and feed requests for a few dozen
users; afterwards `ranked-feeds` is read from its start (every request answered exactly once) and each user's
tables, read through the worker's /inspect/user, are compared with an oracle replay of what was delivered.
Each test records its outcome in bench/results/chaos.json, the source of README's fault table."""

import os
import random
import re
import signal
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from foryou.processes import WorkerProcess
from tests.integration.chaos import COMPARED, Load, read_answers, record_outcome
from tests.integration.conftest import StartWorker
from tests.integration.helpers import eventually, worker_json
from tests.local_broker import kafka_for_tests
from topics.specs import ENGAGEMENT_EVENTS, FEED_REQUESTS, SOCIAL_GRAPH_EVENTS

pytestmark = pytest.mark.slow

# The January preset: these checks compare a user's feeds before and after (its served filter lets a refresh
# show a post again); production-2026-10 serves a post only once, which would make them pass vacuously.
ENV = {"FORYOU_POLICY": "reverse-chron", "FORYOU_PRESET": "seed-2026-01"}


def _population(ids: Iterator[int]) -> tuple[list[int], list[int]]:
    return [next(ids) for _ in range(30)], [next(ids) for _ in range(12)]


def _state_mismatches(worker: WorkerProcess, load: Load) -> dict[int, tuple[dict, dict]]:
    mismatches = {}
    for user in load.users:
        def inspected(user: int = user) -> dict | None:
            status, body = worker_json(worker, f"/inspect/user/{user}")
            return body if status == 200 else None

        body = eventually(inspected, timeout_s=60)
        seen = {key: body[key] for key in COMPARED}
        expected = load.oracle(user)
        if seen != expected:
            mismatches[user] = (seen, expected)
    return mismatches


def _check_and_record(fault: str, worker: WorkerProcess, load: Load, kafka_bootstrap: str, **extra: float) -> None:
    answers = read_answers(kafka_bootstrap, set(load.request_ids), worker.app_id, timeout_s=300)
    mismatches = _state_mismatches(worker, load)
    counts = load.counts()
    events = counts.get(ENGAGEMENT_EVENTS, 0) + counts.get(SOCIAL_GRAPH_EVENTS, 0)
    applied = sum(
        1 for topic in (ENGAGEMENT_EVENTS, SOCIAL_GRAPH_EVENTS)
        for value in load.delivered[topic] if value["user_id"] not in mismatches
    )
    duplicated = answers.duplicated()
    record_outcome(
        fault,
        units={"seconds_paused": "s", "seconds_frozen": "s", "metrics_worst_response_s": "s"},
        requests_sent=len(load.request_ids),
        requests_answered=len(load.request_ids) - len(answers.missing(load.request_ids)),
        requests_duplicated=len(duplicated),
        answers_error=answers.statuses.get("error", 0),
        events_produced=events,
        events_applied=applied,
        **extra,
    )
    assert load.failed == 0
    assert not answers.missing(load.request_ids), f"unanswered: {answers.missing(load.request_ids)[:10]}"
    assert not duplicated, f"answered more than once: {duplicated}"
    first = next(iter(mismatches.items()), None)
    assert not mismatches, f"state differs from the oracle for {len(mismatches)} users, e.g. {first}"


def test_five_sigkills_under_load_lose_nothing_and_answer_every_request_exactly_once(
    start_worker: StartWorker, kafka_bootstrap: str, ids: Iterator[int], tmp_path: Path
) -> None:
    app_id = f"foryou-chaos-kill-{uuid.uuid4().hex[:8]}"
    data_dir = tmp_path / "worker"
    worker = start_worker(app_id=app_id, data_dir=data_dir, **ENV)
    users, authors = _population(ids)
    load = Load(kafka_bootstrap, users, authors, rate_per_s=40, seed=1).start()
    rng = random.Random(5)
    try:
        for _ in range(5):
            time.sleep(rng.uniform(3.0, 7.0))
            assert worker.proc is not None
            os.killpg(worker.proc.pid, signal.SIGKILL)
            worker.proc.wait(30)
            worker = start_worker(app_id=app_id, data_dir=data_dir, **ENV)
        time.sleep(3.0)
    finally:
        load.stop()
    worker.wait_caught_up(timeout_s=300)
    _check_and_record("sigkill_x5", worker, load, kafka_bootstrap, kills=5)
    worker.stop()  # the fixture stops workers at the module's end; the next test needs the CPU


def _generations(worker: WorkerProcess) -> list[int]:
    """The consumer-group generations the worker joined, from its log (aiokafka: "Joined group ... (generation N)")."""
    return [int(n) for n in re.findall(r"Joined group .* \(generation (\d+)\)", worker.log_path.read_text())]


def test_a_worker_frozen_past_its_session_timeout_rejoins_without_losing_or_repeating_an_answer(
    start_worker: StartWorker, kafka_bootstrap: str, ids: Iterator[int], tmp_path: Path
) -> None:
    """SIGSTOP the worker for longer than the 10 s session timeout, three times, under load: each time the
    coordinator expires its membership while it holds fetched, half-processed and unacknowledged records; on
    SIGCONT it finds itself out of the group and rejoins (partitions revoked, then assigned again). Before
    agents/consumer.py, records fetched across such a rejoin were skipped and their offsets committed (37 of
    553 requests never answered in one run)."""
    app_id = f"foryou-chaos-rejoin-{uuid.uuid4().hex[:8]}"
    worker = start_worker(app_id=app_id, data_dir=tmp_path / "worker", **ENV)
    users, authors = _population(ids)
    load = Load(kafka_bootstrap, users, authors, rate_per_s=40, seed=3).start()
    rng = random.Random(7)
    frozen_s = 13.0
    try:
        for _ in range(3):
            time.sleep(rng.uniform(4.0, 8.0))
            assert worker.proc is not None
            os.killpg(worker.proc.pid, signal.SIGSTOP)
            try:
                time.sleep(frozen_s)
            finally:
                os.killpg(worker.proc.pid, signal.SIGCONT)
        time.sleep(5.0)
    finally:
        load.stop()
    worker.wait_caught_up(timeout_s=300)
    generations = _generations(worker)
    # Not vacuous: the worker really lost its membership and joined again (generation 1 is the first join).
    assert max(generations, default=0) >= 2, f"the worker never rejoined: {generations}"
    _check_and_record("worker_frozen_13s_x3", worker, load, kafka_bootstrap, seconds_frozen=frozen_s,
                      freezes=3, rejoins=len(generations) - 1)
    assert worker.proc is not None and worker.proc.poll() is None
    worker.stop()


class Prober:
    """GETs a worker URL twice a second from a thread; remembers the slowest answer and any failure."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.worst_s = 0.0
        self.failures: list[str] = []
        self.probes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Prober":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=10) as response:
                    response.read()
            except Exception as exc:  # any failure to answer is what this records
                if getattr(exc, "code", None) is None:  # an HTTP status (503 from /ready) is still an answer
                    self.failures.append(f"{time.strftime('%X')} {exc!r}")
            self.worst_s = max(self.worst_s, time.monotonic() - started)
            self.probes += 1
            time.sleep(0.5)


def test_a_broker_paused_for_40s_under_load_loses_nothing_and_the_worker_keeps_answering(
    start_worker: StartWorker, kafka_bootstrap: str, ids: Iterator[int], tmp_path: Path
) -> None:
    broker = kafka_for_tests()
    pid = broker.running_pid()
    if pid is None or broker.bootstrap() != kafka_bootstrap:
        pytest.skip("needs the broker this test session started (KAFKA_BOOTSTRAP names another)")
    app_id = f"foryou-chaos-pause-{uuid.uuid4().hex[:8]}"
    env = {**ENV, "FORYOU_STALL_EXIT_S": "45"}
    worker = start_worker(app_id=app_id, data_dir=tmp_path / "worker", **env)
    users, authors = _population(ids)
    load = Load(kafka_bootstrap, users, authors, rate_per_s=40, seed=2).start()
    paused_s = 40.0
    try:
        time.sleep(5.0)
        with Prober(f"{worker.url}/metrics") as metrics_probe, Prober(f"{worker.url}/ready") as ready_probe:
            os.kill(pid, signal.SIGSTOP)
            try:
                time.sleep(paused_s)
            finally:
                os.kill(pid, signal.SIGCONT)
            time.sleep(10.0)
        time.sleep(5.0)
    finally:
        load.stop()
    # The supervisor's part: a worker that exits because it is stuck (code 70, agents/watchdog.py) is started
    # again on the same state. Any other exit fails the test.
    restarts = 0
    deadline = time.monotonic() + 300
    while True:
        assert worker.proc is not None
        code = worker.proc.poll()
        if code is not None:
            assert code == 70, f"the worker exited with {code}: {worker.tail()}"
            restarts += 1
            worker = start_worker(app_id=app_id, data_dir=tmp_path / "worker", **env)
        try:
            worker.wait_caught_up(timeout_s=20)
            break
        except (TimeoutError, OSError):  # not yet, or it exited meanwhile (seen on the next round)
            assert time.monotonic() < deadline, f"not caught up: {worker.tail()}"
    record_outcome(
        "broker_pause_40s_probes", units={"metrics_worst_response_s": "s"},
        metrics_probes=metrics_probe.probes, metrics_failures=len(metrics_probe.failures),
        metrics_worst_response_s=metrics_probe.worst_s,
    )
    assert not metrics_probe.failures, f"/metrics did not answer: {metrics_probe.failures[:5]}"
    assert not ready_probe.failures, f"/ready did not answer: {ready_probe.failures[:5]}"
    assert metrics_probe.worst_s < 5.0
    # Exactly once, counting this deployment's answers (chaos.read_answers): the 322 of 453 "duplicates" once
    # recorded here were the previous test's worker, still running, answering the same public requests.
    _check_and_record("broker_pause_40s", worker, load, kafka_bootstrap, seconds_paused=paused_s,
                      watchdog_restarts=restarts, rejoins=max(0, len(_generations(worker)) - 1))
    assert worker.proc.poll() is None
    assert FEED_REQUESTS in load.counts()
