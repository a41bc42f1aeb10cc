"""Security settings, the ACL plan, and the rules every Kafka client and HTTP call follows (no broker here:
tests/integration/test_security.py runs all of it against a real SASL_SSL broker)."""

import asyncio
import re
import ssl
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from agents.ops import forward_get
from foryou.acls import PUBLIC_INPUTS, WORKER_OUTPUTS, acl_plan
from foryou.settings import KafkaSecurity, aiokafka_config, faust_broker_config, librdkafka_config

REPO = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("agents", "foryou", "streams", "scoring", "stores", "phoenix", "topics")

SASL_ENV = {
    "FORYOU_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
    "FORYOU_KAFKA_SASL_MECHANISM": "PLAIN",
    "FORYOU_KAFKA_SASL_USERNAME": "worker",
    "FORYOU_KAFKA_SASL_PASSWORD": "s3cret",
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [*SASL_ENV, "FORYOU_KAFKA_SASL_PASSWORD_FILE", "FORYOU_KAFKA_SSL_CAFILE",
                 "FORYOU_KAFKA_SSL_CERTFILE", "FORYOU_KAFKA_SSL_KEYFILE", "FORYOU_KAFKA_SSL_CHECK_HOSTNAME"]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# -- settings ---------------------------------------------------------------------------------------------


def test_the_default_is_plaintext_without_credentials(clean_env: pytest.MonkeyPatch) -> None:
    security = KafkaSecurity()
    assert (security.protocol, security.sasl, security.tls) == ("PLAINTEXT", False, False)
    config = librdkafka_config("h:1", security, {"acks": "all"})
    assert config == {"bootstrap.servers": "h:1", "security.protocol": "PLAINTEXT", "acks": "all"}
    assert aiokafka_config("h:1", security) == {"bootstrap_servers": "h:1", "security_protocol": "PLAINTEXT"}
    assert faust_broker_config("h:1", security) == {"broker": "kafka://h:1"}


def test_sasl_ssl_from_the_environment_reaches_every_client_library(clean_env: pytest.MonkeyPatch) -> None:
    for name, value in SASL_ENV.items():
        clean_env.setenv(name, value)
    security = KafkaSecurity()
    assert security.protocol == "SASL_SSL" and security.sasl and security.tls
    rd = librdkafka_config("h:1")  # no explicit settings: the environment's
    assert rd["security.protocol"] == "SASL_SSL"
    assert (rd["sasl.mechanism"], rd["sasl.username"], rd["sasl.password"]) == ("PLAIN", "worker", "s3cret")
    assert rd["ssl.ca.location"] == "probe" and rd["ssl.endpoint.identification.algorithm"] == "https"
    aio = aiokafka_config("h:1")
    assert (aio["security_protocol"], aio["sasl_mechanism"]) == ("SASL_SSL", "PLAIN")
    assert (aio["sasl_plain_username"], aio["sasl_plain_password"]) == ("worker", "s3cret")
    assert isinstance(aio["ssl_context"], ssl.SSLContext) and aio["ssl_context"].check_hostname
    credentials = faust_broker_config("h:1")["broker_credentials"]
    assert credentials.protocol.value == "SASL_SSL" and credentials.mechanism.value == "PLAIN"
    assert (credentials.username, credentials.password) == ("worker", "s3cret")
    assert "s3cret" not in repr(security) and "s3cret" not in security.summary()


def test_the_password_can_come_from_a_file(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    for name, value in SASL_ENV.items():
        clean_env.setenv(name, value)
    clean_env.delenv("FORYOU_KAFKA_SASL_PASSWORD")
    clean_env.setenv("FORYOU_KAFKA_SASL_PASSWORD_FILE", str(secret))
    assert KafkaSecurity().password == "from-a-file"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FORYOU_KAFKA_SECURITY_PROTOCOL": "TLS"}, "must be one of PLAINTEXT, SSL"),
        ({"FORYOU_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs FORYOU_KAFKA_SASL_USERNAME"),
        ({**SASL_ENV, "FORYOU_KAFKA_SASL_MECHANISM": "GSSAPI"}, "FORYOU_KAFKA_SASL_MECHANISM must be one of"),
        ({"FORYOU_KAFKA_SECURITY_PROTOCOL": "SSL", "FORYOU_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"}, "is not a file"),
        ({"FORYOU_KAFKA_SSL_CERTFILE": __file__}, "go together"),
        ({"FORYOU_KAFKA_SASL_PASSWORD_FILE": "/nonexistent/password"}, "cannot be read"),
    ],
)
def test_bad_security_settings_stop_with_a_clear_message(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(SystemExit, match=message):
        KafkaSecurity()


def test_every_kafka_client_is_configured_by_the_settings_module() -> None:
    """No client is built elsewhere: each constructor call takes its configuration from foryou.settings."""
    builders = {
        "Producer": "librdkafka_config(",
        "Consumer": "librdkafka_config(",
        "AdminClient": "librdkafka_config(",
        "AIOKafkaConsumer": "**aiokafka_config(",
        "AIOKafkaProducer": "**aiokafka_config(",
        "faust.App": "**faust_broker_config(",
    }
    pattern = re.compile(r"(?<![\w.])(" + "|".join(re.escape(name) for name in builders) + r")\(")
    found = 0
    for directory in SOURCE_DIRS:
        for path in (REPO / directory).rglob("*.py"):
            text = path.read_text()
            for match in pattern.finditer(text):
                found += 1
                call = text[match.end():match.end() + 400]
                assert builders[match.group(1)] in call, (
                    f"{path.relative_to(REPO)}: {match.group(1)}(...) not configured by foryou.settings"
                )
    assert found >= 10


# -- ACLs -------------------------------------------------------------------------------------------------


def test_only_workers_write_internal_and_output_topics() -> None:
    plan = acl_plan("myapp", worker="User:w", client="User:c")
    writes = {
        (acl.principal, acl.name) for acl in plan if acl.resource == "topic" and acl.operation in ("Write", "All")
    }
    assert ("User:w", "myapp-") in writes
    assert next(acl for acl in plan if acl.name == "myapp-").prefixed
    for topic in WORKER_OUTPUTS:
        assert ("User:w", topic) in writes and ("User:c", topic) not in writes
    for topic in PUBLIC_INPUTS:
        assert ("User:c", topic) in writes and ("User:w", topic) not in writes
    client_topics = {acl.name for acl in plan if acl.principal == "User:c" and acl.resource == "topic"}
    assert not any(name.startswith("myapp") for name in client_topics)
    assert not any(acl.principal == "User:c" and acl.resource == "group" and "myapp".startswith(acl.name)
                   for acl in plan), "a client must not be able to join the workers' group"


def test_readme_documents_every_acl() -> None:
    readme = (REPO / "README.md").read_text()
    for acl in acl_plan("foryou"):
        assert acl.kafka_acls_command() in readme, acl


# -- outbound HTTP ----------------------------------------------------------------------------------------


def test_forwarding_to_a_hung_worker_times_out_with_504() -> None:
    async def scenario() -> tuple[tuple[int, str, str], tuple[int, str, str], float]:
        released = asyncio.Event()

        async def hang(request: web.Request) -> web.Response:
            await released.wait()
            return web.Response(text="too late")

        async def answer(request: web.Request) -> web.Response:
            return web.json_response({"user_id": 1}, status=200)

        server = web.Application()
        server.router.add_get("/hang", hang)
        server.router.add_get("/answer", answer)
        runner = web.AppRunner(server)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as session:
                base = URL(f"http://127.0.0.1:{port}")
                loop = asyncio.get_running_loop()
                started = loop.time()
                hung = await forward_get(session, base / "hang", {}, timeout_s=0.5)
                waited = loop.time() - started
                answered = await forward_get(session, base / "answer", {}, timeout_s=5)
        finally:
            released.set()
            await runner.cleanup()
        return hung, answered, waited

    hung, answered, waited = asyncio.run(scenario())
    assert hung[0] == 504 and "did not answer within 0.5s" in hung[2]
    assert waited < 10
    assert answered[0] == 200 and answered[1] == "application/json" and '"user_id"' in answered[2]
