"""Starting and stopping worker processes: used by the demo, the benchmarks and the integration tests."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _ChildProcess:
    """A `foryou` command run in its own process group, its output in `log_path`."""

    proc: subprocess.Popen[bytes] | None
    log_path: Path

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (a clean shutdown: a worker flushes its tables), then SIGKILL after `timeout_s`."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(10)


class WorkerProcess(_ChildProcess):
    """One `foryou worker` in a subprocess with its own data dir and web port."""

    def __init__(
        self,
        *,
        bootstrap: str,
        app_id: str,
        data_dir: Path,
        log_path: Path,
        web_port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.app_id = app_id
        self.data_dir = data_dir
        self.log_path = log_path
        self.web_port = web_port or free_port()
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self) -> "WorkerProcess":
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP": self.bootstrap,
            "FORYOU_APP_ID": self.app_id,
            "FORYOU_DATA_DIR": str(self.data_dir),
            "FORYOU_WEB_PORT": str(self.web_port),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open for its whole life
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "foryou.cli", "worker"],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        return self

    def status(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"{self.url}/ready", timeout=2) as response:
                return orjson.loads(response.read())
        except urllib.error.HTTPError as exc:
            return orjson.loads(exc.read())
        except (OSError, ValueError):
            return None

    def wait_ready(self, timeout_s: float = 120.0) -> float:
        """Block until the worker says it is ready; returns seconds since start."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                code = self.proc.returncode
                raise RuntimeError(f"worker exited with {code}; log: {self.log_path}\n{self.tail()}")
            status = self.status()
            if status and status.get("ready"):
                return time.monotonic() - self.started_at
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready after {timeout_s:.0f}s (status {self.status()}); {self.tail()}")

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            return response.read().decode()

    def consumer_lag(self) -> dict[str, float]:
        """The worker's own `foryou_consumer_lag_records` samples (series -> records behind)."""
        lag = {}
        for line in self.metrics_text().splitlines():
            if line.startswith("foryou_consumer_lag_records{"):
                series, _, value = line.rpartition(" ")
                lag[series] = float(value)
        return lag

    def wait_caught_up(self, timeout_s: float = 300.0) -> None:
        """Block until the worker has processed everything produced so far (its lag metric reads 0)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            lag = self.consumer_lag()
            if lag and sum(lag.values()) == 0:
                return
            time.sleep(1.0)
        raise TimeoutError(f"worker still behind its input after {timeout_s:.0f}s: {self.consumer_lag()}")



class TrainerProcess(_ChildProcess):
    """One `foryou trainer` in a subprocess, publishing to `checkpoint`, metrics on its own port."""

    def __init__(
        self,
        *,
        bootstrap: str,
        app_id: str,
        checkpoint: Path,
        log_path: Path,
        args: list[str] | None = None,
        metrics_port: int | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.app_id = app_id
        self.checkpoint = checkpoint
        self.log_path = log_path
        self.args = args or []
        self.metrics_port = metrics_port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    def start(self) -> "TrainerProcess":
        env = {**os.environ, "KAFKA_BOOTSTRAP": self.bootstrap, "FORYOU_APP_ID": self.app_id, "PYTHONUNBUFFERED": "1"}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open for its whole life
        command = [sys.executable, "-m", "foryou.cli", "trainer", "--checkpoint", str(self.checkpoint),
                   "--metrics-port", str(self.metrics_port), *self.args]
        self.proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        return self

    def wait_published(self, timeout_s: float = 180.0) -> None:
        """Until the first checkpoint is on disk (the trainer publishes its starting point at once)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"trainer exited with {self.proc.returncode}:\n{self.tail()}")
            if self.checkpoint.exists():
                return
            time.sleep(0.2)
        raise TimeoutError(f"trainer published nothing after {timeout_s:.0f}s:\n{self.tail()}")

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            return response.read().decode()

    def wait_ready(self, timeout_s: float = 900.0) -> float:
        """Until it has compiled its programs and consumes (`foryou_trainer_ready` 1); returns the seconds."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"trainer exited with {self.proc.returncode}:\n{self.tail()}")
            if self.metrics().get("foryou_trainer_ready") == 1.0:
                return time.monotonic() - started
            time.sleep(1.0)
        raise TimeoutError(f"trainer not ready after {timeout_s:.0f}s:\n{self.tail()}")

    def metrics(self) -> dict[str, float]:
        """Its /metrics samples as {series: value} (empty while it is not serving yet)."""
        try:
            text = self.metrics_text()
        except OSError:
            return {}
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                series, _, value = line.rpartition(" ")
                samples[series] = float(value)
        return samples

