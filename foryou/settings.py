"""Settings from the environment, with documented defaults (README lists them all).

Every command reads the same `Settings`, so a worker, a client and the test fixtures agree on where the broker
is and where state lives.
"""

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DAY_MS = 86_400_000


def state_dir() -> Path:
    """Where local state lives: the broker's data, the worker's RocksDB, checkpoints (`FORYOU_STATE_DIR`)."""
    return Path(os.environ.get("FORYOU_STATE_DIR", Path.cwd() / ".local")).resolve()


def cache_dir() -> Path:
    """Downloads kept across clones: the Kafka jars (`FORYOU_CACHE_DIR`, default ~/.cache/foryou)."""
    return Path(os.environ.get("FORYOU_CACHE_DIR", Path.home() / ".cache" / "foryou")).resolve()


def bootstrap_file() -> Path:
    return state_dir() / "kafka" / "bootstrap"


def kafka_bootstrap() -> str:
    """`KAFKA_BOOTSTRAP` if set (any cluster), else the local broker started by `foryou kafka start`."""
    explicit = os.environ.get("KAFKA_BOOTSTRAP")
    if explicit:
        return explicit
    path = bootstrap_file()
    if path.exists():
        return path.read_text().strip()
    return "127.0.0.1:9092"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"setting {name}={raw!r} is not an integer") from exc


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, "") or default


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


def _password_from_env() -> str:
    """`FORYOU_KAFKA_SASL_PASSWORD`, or the first line of the file `FORYOU_KAFKA_SASL_PASSWORD_FILE` names
    (Docker and Kubernetes secrets are files)."""
    path = _env("FORYOU_KAFKA_SASL_PASSWORD_FILE")
    if not path:
        return _env("FORYOU_KAFKA_SASL_PASSWORD")
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise SystemExit(f"FORYOU_KAFKA_SASL_PASSWORD_FILE={path!r} cannot be read: {exc}") from exc
    return lines[0] if lines else ""


@dataclass(frozen=True)
class KafkaSecurity:
    """How every Kafka client of foryou authenticates and encrypts: the worker's Faust app, its librdkafka
    producer and admin clients, the aiokafka post replica, the Python client, the CLI and the world generator.
    The default is PLAINTEXT without credentials (the local development broker); README "Security"."""

    protocol: str = field(default_factory=lambda: _env("FORYOU_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper())
    sasl_mechanism: str = field(
        default_factory=lambda: _env("FORYOU_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512").upper()
    )
    username: str = field(default_factory=lambda: _env("FORYOU_KAFKA_SASL_USERNAME"))
    password: str = field(default_factory=_password_from_env, repr=False)
    # PEM CA bundle that signed the brokers' certificates; empty trusts the system's CAs.
    ssl_cafile: str = field(default_factory=lambda: _env("FORYOU_KAFKA_SSL_CAFILE"))
    # A client certificate and its (unencrypted PEM) key, for brokers that require mutual TLS.
    ssl_certfile: str = field(default_factory=lambda: _env("FORYOU_KAFKA_SSL_CERTFILE"))
    ssl_keyfile: str = field(default_factory=lambda: _env("FORYOU_KAFKA_SSL_KEYFILE"))
    # The broker's certificate must name the host the client connects to (off only for broken setups).
    ssl_check_hostname: bool = field(
        default_factory=lambda: _env("FORYOU_KAFKA_SSL_CHECK_HOSTNAME", "true").lower() not in ("0", "false", "no")
    )

    def __post_init__(self) -> None:
        problems = []
        if self.protocol not in SECURITY_PROTOCOLS:
            problems.append(f"FORYOU_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(SECURITY_PROTOCOLS)}, "
                            f"not {self.protocol!r}")
        if self.sasl:
            if self.sasl_mechanism not in SASL_MECHANISMS:
                problems.append(f"FORYOU_KAFKA_SASL_MECHANISM must be one of {', '.join(SASL_MECHANISMS)}, "
                                f"not {self.sasl_mechanism!r}")
            if not self.username or not self.password:
                problems.append(f"{self.protocol} needs FORYOU_KAFKA_SASL_USERNAME and FORYOU_KAFKA_SASL_PASSWORD "
                                "(or FORYOU_KAFKA_SASL_PASSWORD_FILE)")
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            problems.append("FORYOU_KAFKA_SSL_CERTFILE and FORYOU_KAFKA_SSL_KEYFILE go together (mutual TLS)")
        for name, path in (("CAFILE", self.ssl_cafile), ("CERTFILE", self.ssl_certfile),
                           ("KEYFILE", self.ssl_keyfile)):
            if path and not Path(path).is_file():
                problems.append(f"FORYOU_KAFKA_SSL_{name}={path!r} is not a file")
        if problems:
            raise SystemExit("Kafka security settings:\n  " + "\n  ".join(problems))

    def summary(self) -> str:
        """The settings in force, for error messages (never the password)."""
        parts = [f"FORYOU_KAFKA_SECURITY_PROTOCOL={self.protocol}"]
        if self.sasl:
            parts.append(f"{self.sasl_mechanism} as {self.username!r}")
        if self.tls:
            parts.append(f"CA {self.ssl_cafile or 'system'}")
        return ", ".join(parts)

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol.endswith("SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of the Python (aiokafka, Faust) clients; None without TLS."""
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ssl_cafile or None)
        context.check_hostname = self.ssl_check_hostname
        if self.ssl_certfile:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return context


def librdkafka_config(
    bootstrap: str, security: KafkaSecurity | None = None, config: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The configuration of every confluent-kafka (librdkafka) Producer, Consumer and AdminClient: the
    bootstrap address, the security settings (from the environment unless given), then the client's own."""
    security = security or KafkaSecurity()
    result: dict[str, Any] = {"bootstrap.servers": bootstrap, "security.protocol": security.protocol}
    if security.sasl:
        result.update({"sasl.mechanism": security.sasl_mechanism, "sasl.username": security.username,
                       "sasl.password": security.password})
    if security.tls:
        # "probe": librdkafka's own OpenSSL finds the system's CA bundle wherever the distribution keeps it.
        result["ssl.ca.location"] = security.ssl_cafile or "probe"
        result["ssl.endpoint.identification.algorithm"] = "https" if security.ssl_check_hostname else "none"
        if security.ssl_certfile:
            result["ssl.certificate.location"] = security.ssl_certfile
            result["ssl.key.location"] = security.ssl_keyfile
    result.update(config or {})
    return result


def aiokafka_config(bootstrap: str, security: KafkaSecurity | None = None) -> dict[str, Any]:
    """The connection keyword arguments of every aiokafka client (the worker's post replica)."""
    security = security or KafkaSecurity()
    result: dict[str, Any] = {"bootstrap_servers": bootstrap, "security_protocol": security.protocol}
    if security.sasl:
        result.update({"sasl_mechanism": security.sasl_mechanism, "sasl_plain_username": security.username,
                       "sasl_plain_password": security.password})
    if security.tls:
        result["ssl_context"] = security.ssl_context()
    return result


def faust_broker_config(bootstrap: str, security: KafkaSecurity | None = None) -> dict[str, Any]:
    """The broker keyword arguments of the Faust app (its aiokafka consumer, producer and admin)."""
    from faust.auth import SASLCredentials, SSLCredentials

    security = security or KafkaSecurity()
    result: dict[str, Any] = {"broker": f"kafka://{bootstrap}"}
    if security.sasl:
        # SASLCredentials means SASL_SSL when it has a TLS context, SASL_PLAINTEXT otherwise.
        result["broker_credentials"] = SASLCredentials(
            username=security.username, password=security.password, mechanism=security.sasl_mechanism,
            ssl_context=security.ssl_context(),
        )
    elif security.tls:
        result["broker_credentials"] = SSLCredentials(security.ssl_context())
    return result


@dataclass(frozen=True)
class Settings:
    bootstrap: str = field(default_factory=kafka_bootstrap)
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
    # The Faust application id: also the consumer group and the prefix of changelog topics.
    app_id: str = field(default_factory=lambda: os.environ.get("FORYOU_APP_ID", "foryou"))
    data_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("FORYOU_DATA_DIR", state_dir() / "worker")).resolve()
    )
    web_host: str = field(default_factory=lambda: os.environ.get("FORYOU_WEB_HOST", "127.0.0.1"))
    web_port: int = field(default_factory=lambda: _env_int("FORYOU_WEB_PORT", 6066))
    # Partitions of the topics the app creates; every worker of a group must use the same number.
    partitions: int = field(default_factory=lambda: _env_int("FORYOU_PARTITIONS", 4))
    post_retention_ms: int = field(default_factory=lambda: _env_int("FORYOU_POST_RETENTION_MS", 2 * DAY_MS))
    # "phoenix" runs the full pipeline; "reverse-chron" the in-network, newest-first baseline.
    policy: str = field(default_factory=lambda: os.environ.get("FORYOU_POLICY", "phoenix"))
    # A Phoenix checkpoint; empty means an untrained, seeded model (reported as such in `model`).
    checkpoint: str = field(default_factory=lambda: os.environ.get("FORYOU_CHECKPOINT", ""))
    # A feed request older than this when read (e.g. queued while no worker ran) is answered with an error
    # instead of a feed: its client has stopped waiting, and a new consumer group must not serve history.
    request_ttl_ms: int = field(default_factory=lambda: _env_int("FORYOU_REQUEST_TTL_MS", 120_000))
    # Feed requests a worker ranks at once (of different users; one user's run in order). One more is answered
    # at once with an "overloaded" error instead of waiting without bound (agents/request_scheduler.py).
    max_in_flight: int = field(default_factory=lambda: _env_int("FORYOU_MAX_IN_FLIGHT", 64))
    # Allocations between two young-generation garbage collections once the worker has started, the objects
    # of its start frozen out of every collection (agents/collector.py); 0 keeps Python's defaults.
    gc_young_threshold: int = field(default_factory=lambda: _env_int("FORYOU_GC_YOUNG_THRESHOLD", 50_000))
    # A worker with input waiting that processes none of it for this long exits for its supervisor to restart
    # it (agents/watchdog.py); 0 disables.
    stall_exit_s: int = field(default_factory=lambda: _env_int("FORYOU_STALL_EXIT_S", 120))
    # Faust's own Prometheus sensor (foryou_faust_*: events, commits, table operations, rebalance latency):
    # "on" or "off". It updates labelled metrics on every record of every stream, about a fifth of the worker's
    # CPU per ingested event (README "Where the time goes in ingest"); the worker's own per-batch counters
    # (foryou_events_processed_total, foryou_records_produced_total) cover what the dashboard shows.
    faust_sensors: str = field(default_factory=lambda: os.environ.get("FORYOU_FAUST_SENSORS", "off"))
    log_level: str = field(default_factory=lambda: os.environ.get("FORYOU_LOG_LEVEL", "info"))
    # Post content vectors computed at ingest and stored with each post (phoenix.content): "on" or "off".
    # Off, the post store holds none and a model trained with content sees every post's as unknown.
    content: str = field(default_factory=lambda: os.environ.get("FORYOU_CONTENT", "on"))
    # A user whose newest engagement is older than this loses the engagement sequence (0: never), and a
    # served history whose ids no longer count goes too; checked every `user_sweep_interval_s`. This bounds
    # the user tables by recent activity rather than by every user id ever seen.
    user_idle_ms: int = field(default_factory=lambda: _env_int("FORYOU_USER_IDLE_MS", 30 * DAY_MS))
    user_sweep_interval_s: int = field(default_factory=lambda: _env_int("FORYOU_USER_SWEEP_INTERVAL_S", 3600))

    def __post_init__(self) -> None:
        if self.policy not in ("phoenix", "reverse-chron"):
            raise SystemExit(f"FORYOU_POLICY must be 'phoenix' or 'reverse-chron', not {self.policy!r}")
        if self.faust_sensors not in ("on", "off"):
            raise SystemExit(f"FORYOU_FAUST_SENSORS must be 'on' or 'off', not {self.faust_sensors!r}")
        if self.content not in ("on", "off"):
            raise SystemExit(f"FORYOU_CONTENT must be 'on' or 'off', not {self.content!r}")
        if self.gc_young_threshold < 0:
            raise SystemExit(f"FORYOU_GC_YOUNG_THRESHOLD must be 0 or more, not {self.gc_young_threshold}")
        if self.max_in_flight < 1:
            raise SystemExit(f"FORYOU_MAX_IN_FLIGHT must be at least 1, not {self.max_in_flight}")
        if not 1 <= self.partitions <= 256:
            raise SystemExit(f"FORYOU_PARTITIONS must be within 1..256, not {self.partitions}")
