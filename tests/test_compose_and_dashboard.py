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
import foryou.trainer_metrics  # noqa: F401 - registers the trainer's metrics (its own process) in the default registry
import streams.metrics  # noqa: F401 - registers the pipeline's metrics in the default registry
from foryou.settings import Settings

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "foryou.json"
PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"

# The metrics of `foryou trainer` (a process of its own, not a worker) share this prefix.
TRAINER_PREFIX = "foryou_trainer_"
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


def test_every_dashboard_metric_is_exported_by_the_worker_or_the_trainer() -> None:
    queried = dashboard_metric_names()
    missing = queried - worker_exported_names() - PROMETHEUS_SYNTHETIC
    assert not missing, f"the dashboard queries metrics neither the worker nor the trainer exports: {sorted(missing)}"


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
        "foryou_event_loop_lag_seconds",  # a blocked loop stops heartbeats and /metrics
        "foryou_shed_requests_total",  # requests refused (overloaded) or too old (expired) when they would run
        "foryou_feed_requests_in_flight",
        "foryou_trainer_loss",  # the trainer: online loss, AUC on the latest window, checkpoint age
        "foryou_trainer_window_auc",
        "foryou_trainer_checkpoint_age_seconds",
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
    assert set(services) >= {"certs", "kafka", "setup", "worker", "prometheus", "grafana"}
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    assert "foryou topics create" in services["setup"]["command"][-1]
    assert services["worker"]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert services["kafka"]["depends_on"]["certs"]["condition"] == "service_completed_successfully"


def test_workers_scale_they_publish_no_host_port(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert "ports" not in worker, "a fixed host port would stop `--scale worker=N`"
    assert "container_name" not in worker
    assert str(worker["environment"]["FORYOU_WEB_PORT"]) in [str(port) for port in worker["expose"]]
    assert worker["environment"]["FORYOU_WEB_HOST"] == "0.0.0.0"
    command = " ".join(worker["command"])
    assert "NODE_CANONICAL_URL=" in command and "FORYOU_WEB_PORT" in command and "foryou worker" in command


def test_topics_and_workers_agree_on_the_settings_that_must_match(compose: dict[str, Any]) -> None:
    setup_env = compose["services"]["setup"]["environment"]
    worker_env = compose["services"]["worker"]["environment"]
    for name in ("KAFKA_BOOTSTRAP", "FORYOU_APP_ID", "FORYOU_PARTITIONS", "FORYOU_KAFKA_SECURITY_PROTOCOL",
                 "FORYOU_KAFKA_SSL_CAFILE"):
        assert setup_env[name] == worker_env[name], name
    kafka_env = compose["services"]["kafka"]["environment"]
    listener = _advertised(kafka_env)[worker_env["KAFKA_BOOTSTRAP"]]
    assert _protocols(kafka_env)[listener] == worker_env["FORYOU_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    # Settings parses them as the worker would (the CA file exists only inside the containers).
    import os
    from unittest import mock

    env = {k: str(v) for k, v in worker_env.items() if k != "FORYOU_KAFKA_SSL_CAFILE"}
    with mock.patch.dict(os.environ, env):
        settings = Settings()
    assert (settings.kafka_security.protocol, settings.kafka_security.username) == ("SASL_SSL", "worker")
    assert settings.partitions == int(kafka_env["KAFKA_NUM_PARTITIONS"])
    assert settings.web_port == int(worker_env["FORYOU_WEB_PORT"])


# -- docker-compose security ------------------------------------------------------------------------------


def _protocols(kafka_env: dict[str, Any]) -> dict[str, str]:
    """Listener name -> security protocol."""
    return dict(pair.split(":") for pair in kafka_env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))


def _listener_ports(kafka_env: dict[str, Any]) -> dict[str, str]:
    """Listener name -> the container port it binds."""
    return {name: address.rsplit(":", 1)[1] for name, address in
            (entry.split("://") for entry in kafka_env["KAFKA_LISTENERS"].split(","))}


def _advertised(kafka_env: dict[str, Any]) -> dict[str, str]:
    """Advertised host:port -> listener name."""
    return {address: name for name, address in
            (entry.split("://") for entry in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(","))}


def test_compose_kafka_speaks_sasl_ssl_only_and_publishes_it_on_loopback(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]
    protocols, ports = _protocols(env), _listener_ports(env)
    assert set(protocols) == set(ports), "every listener has a protocol and every protocol a listener"
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    for name, protocol in protocols.items():
        # The controller's listener is SASL (PLAIN) without TLS, inside the compose network; no listener is
        # ever PLAINTEXT or unauthenticated.
        assert protocol == ("SASL_PLAINTEXT" if name == controller else "SASL_SSL"), name
    assert env["KAFKA_LISTENER_NAME_CONTROLLER_SASL_ENABLED_MECHANISMS"] == "PLAIN"
    assert set(env["KAFKA_SASL_ENABLED_MECHANISMS"].split(",")) == {"SCRAM-SHA-512", "PLAIN"}
    assert protocols[env["KAFKA_INTER_BROKER_LISTENER_NAME"]] == "SASL_SSL"
    published = kafka["ports"]
    assert published, "clients on the host need the external listener"
    for mapping in published:
        host_ip, _, container_port = str(mapping).split(":")
        assert host_ip == "127.0.0.1", f"{mapping}: published beyond loopback"
        (listener,) = [name for name, port in ports.items() if port == container_port]
        assert protocols[listener] == "SASL_SSL", f"{mapping} publishes {protocols[listener]}"
    for name, service in compose["services"].items():
        for mapping in service.get("ports", []):
            assert str(mapping).startswith("127.0.0.1:"), f"{name} publishes {mapping} on every interface"
    # Deny by default; only foryou's ACLs allow anything, and only the admin is a super user.
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert str(env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"]).lower() == "false"
    assert env["KAFKA_SUPER_USERS"] == "User:admin"


def test_compose_broker_secrets_come_from_the_certs_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    certs, kafka = services["certs"], services["kafka"]
    secrets_dir = certs["entrypoint"][2]
    assert certs["entrypoint"][:2] == ["sh", "/deploy/broker-secrets.sh"]
    assert (REPO / _mounts(certs)["/deploy"] / "broker-secrets.sh").is_file()
    assert _mounts(kafka)[secrets_dir] == _mounts(certs)[secrets_dir] == "kafka-secrets"
    env = kafka["environment"]
    assert env["KAFKA_OPTS"] == f"-Djava.security.auth.login.config={secrets_dir}/broker_jaas.conf"
    assert env["KAFKA_SSL_TRUSTSTORE_LOCATION"] == f"{secrets_dir}/ca.crt"
    # The broker's certificate names every host it is advertised as, so clients verify it.
    sans = certs["environment"]["BROKER_SANS"].split(",")
    for address in _advertised(env):
        assert f"dns:{address.rsplit(':', 1)[0]}" in sans, address
    assert "kafka-secrets" in compose["volumes"] and "kafka-ca" in compose["volumes"]


def test_compose_clients_authenticate_and_only_the_admin_sets_up(compose: dict[str, Any]) -> None:
    services = compose["services"]
    setup, worker = services["setup"], services["worker"]
    for service in (setup, worker):
        env = service["environment"]
        assert env["FORYOU_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        ca_dir = str(Path(env["FORYOU_KAFKA_SSL_CAFILE"]).parent)
        assert _mounts(service)[ca_dir] == "kafka-ca", "the clients see the CA certificate, not the keystore"
        assert "kafka-secrets" not in _mounts(service).values()
        assert env["FORYOU_KAFKA_SASL_USERNAME"] and env["FORYOU_KAFKA_SASL_PASSWORD"]
    assert (worker["environment"]["FORYOU_KAFKA_SASL_USERNAME"], worker["environment"]["FORYOU_KAFKA_SASL_MECHANISM"]) \
        == ("worker", "SCRAM-SHA-512")
    assert setup["environment"]["FORYOU_KAFKA_SASL_USERNAME"] == "admin"
    script = setup["command"][-1]
    for user in ("worker", "client"):
        assert f"foryou security scram-user {user}" in script
    assert "foryou security acls --apply --worker User:worker --client User:client" in script


@pytest.mark.slow
def test_broker_secrets_script_makes_what_the_broker_reads(tmp_path: Path) -> None:
    import os
    import shutil
    import subprocess

    if shutil.which("keytool") is None:
        pytest.skip("keytool (a JDK) is not on the PATH")
    env = {**os.environ, "KEYSTORE_PASSWORD": "k3ystore", "ADMIN_PASSWORD": "adm1n", "SECRETS_OWNER": str(os.getuid())}
    out, ca_out = tmp_path / "secrets", tmp_path / "ca"
    done = subprocess.run(["sh", str(REPO / "deploy" / "kafka" / "broker-secrets.sh"), str(out), str(ca_out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert {p.name for p in out.iterdir()} == {"broker.p12", "ca.crt", "keystore_creds", "broker_jaas.conf",
                                                "admin.properties"}, "the CA's private key must not be kept"
    assert (ca_out / "ca.crt").read_bytes() == (out / "ca.crt").read_bytes()
    assert {p.name for p in ca_out.iterdir()} == {"ca.crt"}
    assert (out / "keystore_creds").read_text() == "k3ystore"
    assert 'user_admin="adm1n"' in (out / "broker_jaas.conf").read_text()
    assert f"ssl.truststore.location={out}/ca.crt" in (out / "admin.properties").read_text()
    assert (out / "broker.p12").stat().st_mode & 0o077 == 0, "the keystore is readable by its owner only"


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
