"""docker-compose.yml, the Prometheus config and the Grafana dashboard agree with the code.

No Docker engine runs here: these parse the files and check their structure, ports, settings and the metric
names the dashboard queries against the metrics the worker registers. tests/integration/
test_prometheus_scrape.py checks the same names against a real worker scraped by a real Prometheus.
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from faust.sensors.prometheus import FaustMetrics
from prometheus_client import REGISTRY, CollectorRegistry

import agents.metrics
import streams.metrics  # noqa: F401 - registers the pipeline's metrics in the default registry
from foryou.settings import Settings

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "foryou.json"
PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"

# Series Prometheus makes itself for every target, not exported by the worker.
PROMETHEUS_SYNTHETIC = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
_SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}
_PROMQL_WORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless", "inf"}
)


# -- helpers (also used by the Prometheus integration test) ----------------------------------------------


def dashboard_queries(dashboard: dict[str, Any]) -> Iterator[str]:
    """Every PromQL expression of the dashboard: panel targets (rows included) and template variables."""
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                yield target["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        yield query["query"] if isinstance(query, dict) else query


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are not functions, keywords, label names
    (in `{...}` or `by (...)`) or parts of ranges. Grafana's `label_values(metric, label)` reads `metric`."""
    label_values = re.fullmatch(r"\s*label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*\w+\s*\)\s*", expr)
    if label_values:
        return {label_values.group(1)}
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    stripped = re.sub(r"\{[^}]*\}", "", stripped)
    stripped = re.sub(r"\[[^\]]*\]", "", stripped)
    stripped = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", stripped)
    names = set()
    for match in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", stripped):
        name, is_call = match.group(1), match.group(2)
        if not is_call and name not in _PROMQL_WORDS:
            names.add(name)
    return names


def dashboard_metric_names(path: Path = DASHBOARD) -> set[str]:
    names: set[str] = set()
    for expr in dashboard_queries(json.loads(path.read_text())):
        names |= metric_names(expr)
    return names


def registered_sample_names(registry: CollectorRegistry) -> set[str]:
    """Every sample name the registry's metric families can expose (labelled families expose none until a
    child exists, so the names come from each family's type)."""
    names = set()
    for family in registry.collect():
        for suffix in _SAMPLE_SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
        names.update(sample.name for sample in family.samples)
    return names


def worker_exported_names() -> set[str]:
    faust_registry = CollectorRegistry()
    FaustMetrics.create(faust_registry, agents.metrics.FAUST_METRICS_PREFIX)
    return registered_sample_names(REGISTRY) | registered_sample_names(faust_registry)


# -- the dashboard ----------------------------------------------------------------------------------------


def test_metric_name_extraction_ignores_functions_labels_and_ranges() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, stage) (rate(foryou_stage_latency_seconds_bucket{instance=~"$x",'
        'stage!="a b"}[$__rate_interval]))) / on (instance) group_left sum(up) or vector(0)'
    )
    assert metric_names(expr) == {"foryou_stage_latency_seconds_bucket", "up"}
    assert metric_names("label_values(foryou_post_store_posts, instance)") == {"foryou_post_store_posts"}
    assert metric_names("sum(rate(a_total[5m])) / sum(rate(b_count[1m]))") == {"a_total", "b_count"}


def test_every_dashboard_metric_is_exported_by_the_worker() -> None:
    queried = dashboard_metric_names()
    missing = queried - worker_exported_names() - PROMETHEUS_SYNTHETIC
    assert not missing, f"the dashboard queries metrics no worker exports: {sorted(missing)}"


def test_the_dashboard_covers_what_an_operator_needs() -> None:
    queried = dashboard_metric_names()
    needed = {
        "foryou_records_ingested_total",  # ingest rate per topic
        "foryou_dead_letters_total",
        "foryou_feed_request_latency_seconds_bucket",  # end-to-end latency
        "foryou_stage_latency_seconds_bucket",
        "foryou_source_candidates_sum",
        "foryou_phoenix_score_seconds_bucket",
        "foryou_model_info",
        "foryou_post_store_posts",
        "foryou_table_users",
        "foryou_consumer_lag_records",
        "foryou_rebalances_total",
        "process_resident_memory_bytes",
    }
    assert needed <= queried, f"not on the dashboard: {sorted(needed - queried)}"


def test_every_panel_queries_the_provisioned_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    datasource = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len(panels) >= 12
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        assert all(target["datasource"]["uid"] == datasource["uid"] for target in panel["targets"])


# -- docker-compose ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def prometheus_config() -> dict[str, Any]:
    return yaml.safe_load((REPO / "deploy" / "prometheus.yml").read_text())


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> repo path of a service's bind mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        mounts[target] = source
    return mounts


def test_compose_has_the_whole_system(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) >= {"kafka", "topics", "worker", "prometheus", "grafana"}
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    assert services["topics"]["command"] == ["foryou", "topics", "create"]
    assert services["worker"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_workers_scale_they_publish_no_host_port(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert "ports" not in worker, "a fixed host port would stop `--scale worker=N`"
    assert "container_name" not in worker
    assert str(worker["environment"]["FORYOU_WEB_PORT"]) in [str(port) for port in worker["expose"]]
    assert worker["environment"]["FORYOU_WEB_HOST"] == "0.0.0.0"
    command = " ".join(worker["command"])
    assert "NODE_CANONICAL_URL=" in command and "FORYOU_WEB_PORT" in command and "foryou worker" in command


def test_topics_and_workers_agree_on_the_settings_that_must_match(compose: dict[str, Any]) -> None:
    topics_env = compose["services"]["topics"]["environment"]
    worker_env = compose["services"]["worker"]["environment"]
    for name in ("KAFKA_BOOTSTRAP", "FORYOU_APP_ID", "FORYOU_PARTITIONS"):
        assert topics_env[name] == worker_env[name], name
    kafka_env = compose["services"]["kafka"]["environment"]
    assert f"PLAINTEXT://{worker_env['KAFKA_BOOTSTRAP']}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    # Settings parses them as the worker would.
    import os
    from unittest import mock

    with mock.patch.dict(os.environ, {k: str(v) for k, v in worker_env.items()}):
        settings = Settings()
    assert settings.partitions == int(kafka_env["KAFKA_NUM_PARTITIONS"])
    assert settings.web_port == int(worker_env["FORYOU_WEB_PORT"])


def test_prometheus_scrapes_every_worker_on_its_web_port(
    compose: dict[str, Any], prometheus_config: dict[str, Any]
) -> None:
    prometheus = compose["services"]["prometheus"]
    config_source = _mounts(prometheus)["/etc/prometheus/prometheus.yml"]
    assert (REPO / config_source).resolve() == (REPO / "deploy" / "prometheus.yml").resolve()
    (job,) = prometheus_config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    (discovery,) = job["dns_sd_configs"]
    assert discovery["names"] == ["worker"]  # the compose service: Docker's DNS answers with every replica
    assert str(discovery["port"]) == str(compose["services"]["worker"]["environment"]["FORYOU_WEB_PORT"])


def test_grafana_is_provisioned_with_the_datasource_and_the_dashboard(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = _mounts(grafana)
    assert (REPO / mounts["/etc/grafana/provisioning"]).resolve() == PROVISIONING.resolve()
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "foryou.yml").read_text())["providers"][0]
    dashboards_dir = REPO / mounts[provider["options"]["path"]]
    assert (dashboards_dir / DASHBOARD.name).resolve() == DASHBOARD.resolve()
    datasource = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    prometheus_port = compose["services"]["prometheus"]["ports"][0].split(":")[-1]
    assert datasource["url"] == f"http://prometheus:{prometheus_port}"
