"""A real Prometheus server scrapes a running worker; its own query API shows the series an operator needs,
and every metric the Grafana dashboard queries."""

import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from confluent_kafka import Producer

from foryou import cli
from foryou.client import FeedClient
from foryou.processes import WorkerProcess, free_port
from tests.integration.conftest import StartWorker
from tests.integration.helpers import eventually, wait_for_posts
from tests.test_compose_and_dashboard import PROMETHEUS_SYNTHETIC, TRAINER_PREFIX, dashboard_metric_names
from topics.specs import ENGAGEMENT_EVENTS, FEED_REQUESTS, SOCIAL_GRAPH_EVENTS, TWEET_EVENTS

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="no `prometheus` on PATH: `make debian-tools` installs it (apt-get install prometheus)"
)


class PrometheusServer:
    """A Prometheus subprocess scraping one worker every second, with its storage in a temporary dir."""

    def __init__(self, base: Path, target_port: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "foryou", "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}
            ],
        }
        (base / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log_path = base / "prometheus.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    str(PROMETHEUS),
                    f"--config.file={base / 'prometheus.yml'}",
                    f"--storage.tsdb.path={base / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as response:
            body = orjson.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
        """An instant query's vector: labels (without __name__) -> value."""
        result = self.api("query", query=expr)["result"]
        return {
            tuple(sorted((k, v) for k, v in sample["metric"].items() if k != "__name__")): float(sample["value"][1])
            for sample in result
        }

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited: {self.log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture(scope="module")
def worker(start_worker: StartWorker) -> WorkerProcess:
    started = start_worker(FORYOU_POLICY="phoenix")
    started.wait_caught_up()
    return started


@pytest.fixture(scope="module")
def prometheus(worker: WorkerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus"), worker.web_port)
    try:
        eventually(server.ready, timeout_s=30)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def traffic(worker: WorkerProcess, kafka_bootstrap: str) -> dict[str, int]:
    """Every kind of input, an invalid record and explained feed requests (through the CLI), once."""
    from foryou.client import unique_ids

    ids = unique_ids()
    user, author, post, liked = next(ids), next(ids), next(ids), next(ids)
    with FeedClient(kafka_bootstrap) as client:
        client.follow(user, author)
        client.post(liked, author, text="liked")
        client.post(post, author, text="scraped")
        client.engage(user, liked, author, "favorite")  # seen: `post` is the one the feed shows
        client.flush()
        wait_for_posts(worker, [post, liked])
    raw = Producer({"bootstrap.servers": kafka_bootstrap})
    raw.produce(ENGAGEMENT_EVENTS, key=str(user).encode(), value=b"{not json")
    raw.flush(30)
    return {"user": user, "author": author, "post": post}


def test_prometheus_scrapes_the_worker_and_sees_the_key_series(
    worker: WorkerProcess, prometheus: PrometheusServer, traffic: dict[str, int], kafka_bootstrap: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", kafka_bootstrap)
    assert cli.main(["request", str(traffic["user"]), "--explain", "--max-results", "5"]) == 0
    out = capsys.readouterr().out
    assert str(traffic["post"]) in out and "top " in out, out  # Phoenix's per-action probabilities

    eventually(lambda: prometheus.query('up{job="foryou"}') == {(("instance", f"127.0.0.1:{worker.web_port}"),
                                                                  ("job", "foryou")): 1.0}, timeout_s=30)

    def scraped(expr: str, at_least: float = 1.0) -> dict:
        def check() -> dict | None:
            vector = prometheus.query(expr)
            return vector if vector and all(value >= at_least for value in vector.values()) else None

        return eventually(check, timeout_s=45)

    ingested = scraped("sum by (topic) (foryou_records_ingested_total)")
    assert {dict(labels)["topic"] for labels in ingested} >= {
        TWEET_EVENTS, ENGAGEMENT_EVENTS, SOCIAL_GRAPH_EVENTS, FEED_REQUESTS
    }
    assert scraped('foryou_dead_letters_total{topic="engagement-events", reason="not_json"}')
    assert scraped('foryou_feed_answers_total{status="ok"}')
    assert scraped("foryou_feed_request_latency_seconds_count")
    stages = scraped("sum by (kind, stage) (foryou_stage_latency_seconds_count)")
    assert {dict(labels)["kind"] for labels in stages} >= {"source", "filter", "scorer", "selector"}
    assert scraped("foryou_source_candidates_count")
    assert scraped("foryou_phoenix_score_seconds_count") and scraped("foryou_phoenix_batch_candidates_count")
    (model,) = scraped("foryou_model_info")
    assert dict(model)["version"]
    assert scraped("foryou_post_store_posts")
    users = scraped('foryou_table_users{table=~"social-graph|user-actions|served-history|answered-requests"}')
    assert len(users) == 4
    lag = scraped("foryou_consumer_lag_records", at_least=0.0)
    assert {dict(labels)["topic"] for labels in lag} == {
        TWEET_EVENTS, ENGAGEMENT_EVENTS, SOCIAL_GRAPH_EVENTS, FEED_REQUESTS, f"{worker.app_id}-user-events"
    }
    assert len(lag) == 5 * 4  # every partition of the five consumed topics (one worker owns them all)
    assert scraped("foryou_rebalances_total")
    assert scraped("sum(foryou_assigned_partitions)", at_least=20.0)
    assert scraped("process_resident_memory_bytes", at_least=50e6)


def test_every_dashboard_metric_is_in_prometheus(prometheus: PrometheusServer, traffic: dict[str, int]) -> None:
    """Names with samples (label values of __name__), plus families the worker declares (their TYPE line
    reached Prometheus as target metadata) that have no labelled child yet, e.g. degradations."""

    def known() -> set[str]:
        names = set(prometheus.api("label/__name__/values"))
        for entry in prometheus.api("targets/metadata", match_target='{job="foryou"}'):
            names.update(sample_names(entry["metric"], entry["type"]))
        return names

    def missing() -> set[str]:
        # The Trainer row reads `foryou trainer`'s own /metrics (tests/integration/test_trainer.py checks it).
        workers = {name for name in dashboard_metric_names() if not name.startswith(TRAINER_PREFIX)}
        return workers - known() - (PROMETHEUS_SYNTHETIC - {"up"})

    try:
        eventually(lambda: not missing(), timeout_s=30)
    except AssertionError:
        pytest.fail(f"dashboard metrics Prometheus never saw from the worker: {sorted(missing())}")
    assert "up" in prometheus.api("label/__name__/values")


def sample_names(family: str, kind: str) -> set[str]:
    """The sample names of a metric family as Prometheus's target metadata names it (text format: a
    counter's family keeps its `_total`)."""
    if kind == "counter":
        base = family.removesuffix("_total")
        return {f"{base}_total", f"{base}_created"}
    if kind == "histogram":
        return {family + suffix for suffix in ("_bucket", "_count", "_sum", "_created")}
    return {family}
