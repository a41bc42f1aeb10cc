"""A TLS + SASL round trip over a real broker that speaks SASL_SSL only.

The module starts its own broker (beside the session's PLAINTEXT one) with a throwaway CA made here by
deploy/kafka/make-certs.sh, SCRAM-SHA-512 users created at format time, a PLAIN user from JAAS, the
StandardAuthorizer and foryou's ACLs applied by the admin. A worker (SCRAM as `worker`), the Python client and
the `foryou request` command (SCRAM or PLAIN as clients) go through it; clients without credentials, with a
wrong password or without the CA are refused with a clear error, and the ACLs keep clients off the workers'
topics and group.
"""

import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, KafkaError, Producer

from foryou.acls import acl_plan, apply_acls
from foryou.client import BrokerRefused, FeedClient, ReaderFailed, unique_ids
from foryou.kafka_local import LocalKafka, SaslSslListener
from foryou.processes import WorkerProcess
from foryou.settings import KafkaSecurity, librdkafka_config
from foryou.world.kafka_io import ensure_public_topics
from tests.integration.helpers import eventually, wait_for_posts
from topics.specs import RANKED_FEEDS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MAKE_CERTS = REPO / "deploy" / "kafka" / "make-certs.sh"


@dataclass(frozen=True)
class SecureCluster:
    bootstrap: str
    listener: SaslSslListener
    app_id: str
    passwords: dict[str, str]

    def security(self, user: str, mechanism: str = "SCRAM-SHA-512", password: str | None = None) -> KafkaSecurity:
        return self.listener.security(user, password or self.passwords[user], mechanism)

    def env(self, security: KafkaSecurity) -> dict[str, str]:
        """The FORYOU_KAFKA_* environment of a process using `security` against this broker."""
        env = {"KAFKA_BOOTSTRAP": self.bootstrap, "FORYOU_APP_ID": self.app_id,
               "FORYOU_KAFKA_SECURITY_PROTOCOL": security.protocol}
        if security.sasl:
            env |= {"FORYOU_KAFKA_SASL_MECHANISM": security.sasl_mechanism,
                    "FORYOU_KAFKA_SASL_USERNAME": security.username, "FORYOU_KAFKA_SASL_PASSWORD": security.password}
        if security.ssl_cafile:
            env["FORYOU_KAFKA_SSL_CAFILE"] = security.ssl_cafile
        return env


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureCluster]:
    base = tmp_path_factory.mktemp("sasl-ssl")
    keystore_password = secrets.token_hex(12)
    made = subprocess.run(
        ["sh", str(MAKE_CERTS), str(base / "certs")], capture_output=True, text=True, timeout=300,
        env={**os.environ, "KEYSTORE_PASSWORD": keystore_password, "BROKER_SANS": "dns:localhost,ip:127.0.0.1"},
    )
    assert made.returncode == 0, made.stderr
    passwords = {name: secrets.token_hex(12) for name in ("admin", "worker", "client", "plainclient")}
    listener = SaslSslListener(
        keystore=base / "certs" / "broker.p12", keystore_password=keystore_password,
        cafile=base / "certs" / "ca.crt", admin_password=passwords["admin"],
        scram_users={"worker": passwords["worker"], "client": passwords["client"]},
        plain_users={"plainclient": passwords["plainclient"]},
    )
    broker = LocalKafka(base / "kafka", sasl_ssl=listener)
    bootstrap = broker.start(timeout_s=180, fresh=True)
    app_id = f"foryou-secure-{uuid.uuid4().hex[:6]}"
    try:
        admin = listener.admin_security()
        ensure_public_topics(bootstrap, security=admin)  # the operator's job: workers create only their own
        plan = acl_plan(app_id, worker="User:worker", client="User:client")
        plan += acl_plan(app_id, worker="User:worker", client="User:plainclient")
        apply_acls(plan, bootstrap, admin)
        yield SecureCluster(bootstrap, listener, app_id, passwords)
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def worker(cluster: SecureCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    base = tmp_path_factory.mktemp("secure-worker")
    env = cluster.env(cluster.security("worker"))
    started = WorkerProcess(
        bootstrap=cluster.bootstrap, app_id=cluster.app_id, data_dir=base / "data", log_path=base / "worker.log",
        # The January preset: the same user's feed is asked for again below, and production-2026-10 serves
        # a post only once.
        env={**env, "FORYOU_PARTITIONS": "4", "FORYOU_POLICY": "reverse-chron", "FORYOU_PRESET": "seed-2026-01"},
    ).start()
    try:
        started.wait_ready(300)
        yield started
    finally:
        started.stop()


def _cli(cluster: SecureCluster, security: KafkaSecurity, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FORYOU_KAFKA_")}
    return subprocess.run(
        [sys.executable, "-m", "foryou.cli", *args], env={**env, **cluster.env(security)},
        capture_output=True, text=True, timeout=180,
    )


def test_worker_client_and_cli_answer_a_feed_request_over_sasl_ssl(
    cluster: SecureCluster, worker: WorkerProcess
) -> None:
    ids = unique_ids()
    user, author, post = next(ids), next(ids), next(ids)
    with FeedClient(cluster.bootstrap, security=cluster.security("client")) as client:
        client.follow(user, author)
        client.post(post, author, text="over TLS, authenticated")
        client.flush()
        wait_for_posts(worker, [post])
        answer = eventually(
            lambda: (lambda a: a if a["status"] == "ok" and a["posts"] else None)(
                client.request(user, timeout_s=60)
            ),
            timeout_s=180, interval_s=1.0,
        )
    assert [p["post_id"] for p in answer["posts"]] == [post]

    # The command line, as a SCRAM user and as a PLAIN user (JAAS), through the same listener.
    for security in (cluster.security("client"), cluster.security("plainclient", "PLAIN")):
        done = _cli(cluster, security, "request", str(user), "--json", "--timeout", "60")
        assert done.returncode == 0, done.stderr
        answer = orjson.loads(done.stdout)
        assert answer["status"] == "ok" and [p["post_id"] for p in answer["posts"]] == [post]


def test_clients_without_valid_credentials_are_refused_with_a_clear_error(cluster: SecureCluster) -> None:
    wrong = cluster.security("client", password="not-the-password")
    with FeedClient(cluster.bootstrap, security=wrong) as client:
        started = time.monotonic()
        with pytest.raises(BrokerRefused, match=r"SASL authentication error.*invalid credentials"):
            client.request(next(unique_ids()), timeout_s=30)
        assert time.monotonic() - started < 30, "a refusal is reported at once, not after the timeout"

    untrusted = KafkaSecurity(protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", username="client",
                              password=cluster.passwords["client"])  # the system CAs: not the throwaway one
    with FeedClient(cluster.bootstrap, security=untrusted) as client, \
            pytest.raises(BrokerRefused, match="certificate verify failed"):
        client.start_reading(timeout_s=30)

    for anonymous in (KafkaSecurity(protocol="PLAINTEXT"),
                      KafkaSecurity(protocol="SSL", ssl_cafile=str(cluster.listener.cafile))):
        with FeedClient(cluster.bootstrap, security=anonymous) as client, \
                pytest.raises(ReaderFailed, match=rf"SECURITY_PROTOCOL={anonymous.protocol}.*security settings"):
            client.start_reading(timeout_s=15)

    done = _cli(cluster, wrong, "request", "1", "--timeout", "20")
    assert done.returncode == 1
    assert "refused this client" in done.stderr and "invalid credentials" in done.stderr
    assert "Traceback" not in done.stderr
    missing_env = {"FORYOU_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}
    missing = subprocess.run(
        [sys.executable, "-m", "foryou.cli", "request", "1"], capture_output=True, text=True, timeout=120,
        env={**os.environ, "KAFKA_BOOTSTRAP": cluster.bootstrap, **missing_env},
    )
    assert missing.returncode != 0 and "needs FORYOU_KAFKA_SASL_USERNAME" in missing.stderr


def test_acls_keep_clients_off_the_workers_topics_and_group(cluster: SecureCluster, worker: WorkerProcess) -> None:
    client = cluster.security("client")
    failures: list[KafkaError] = []
    producer = Producer(librdkafka_config(cluster.bootstrap, client, {"message.timeout.ms": 20_000}))
    for topic in (RANKED_FEEDS, f"{cluster.app_id}-user-events", f"{cluster.app_id}-post-log"):
        producer.produce(topic, key=b"1", value=b"{}", on_delivery=lambda error, _: failures.append(error))
    producer.flush(60)
    assert [error.code() if error else None for error in failures] == [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 3

    # A topic the client may read, in the workers' group: only the group ACL refuses it.
    errors: list[KafkaError] = []
    joiner = Consumer(librdkafka_config(cluster.bootstrap, client, {
        "group.id": cluster.app_id, "error_cb": errors.append, "auto.offset.reset": "earliest",
    }))
    try:
        joiner.subscribe([RANKED_FEEDS])

        def refused() -> bool:
            message = joiner.poll(0.5)
            if message is not None and message.error() is not None:
                errors.append(message.error())
            return any(error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED for error in errors)

        eventually(refused, timeout_s=60, interval_s=0, explain=lambda: repr(errors))
    finally:
        joiner.close()


def test_only_documented_endpoints_are_served(worker: WorkerProcess) -> None:
    def get(path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"{worker.url}{path}", timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def status(path: str) -> int:
        return get(path)[0]

    assert status("/metrics") == 200 and status("/ready") == 200
    index_status, index_body = get("/")
    assert index_status == 200 and orjson.loads(index_body) == {"status": "OK"}  # Faust's index, documented
    # Faust's own views: table data, the cluster's worker URLs, sensor state and assignments, its graph.
    for path in ("/router/", "/table/", "/table/user-actions/1/", "/stats/", "/assignment/", "/graph/",
                 "/performance/"):
        assert status(path) == 404, path
