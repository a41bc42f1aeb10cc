"""Settings from the environment, with documented defaults (README lists them all).

Every command reads the same `Settings`, so a worker, a client and the test fixtures agree on where the broker
is and where state lives.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass(frozen=True)
class Settings:
    bootstrap: str = field(default_factory=kafka_bootstrap)
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
    log_level: str = field(default_factory=lambda: os.environ.get("FORYOU_LOG_LEVEL", "info"))

    def __post_init__(self) -> None:
        if self.policy not in ("phoenix", "reverse-chron"):
            raise SystemExit(f"FORYOU_POLICY must be 'phoenix' or 'reverse-chron', not {self.policy!r}")
        if not 1 <= self.partitions <= 256:
            raise SystemExit(f"FORYOU_PARTITIONS must be within 1..256, not {self.partitions}")
