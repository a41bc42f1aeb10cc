"""A single-node Apache Kafka (KRaft, combined broker and controller) for development, tests and the demo.

The jars come from Maven Central through Maven (cached under `cache_dir()/kafka-<version>`), the storage is
formatted with Kafka's own StorageTool, and the broker runs on 127.0.0.1 on free ports with a 512 MB heap.
`start` is idempotent: a running broker is reused. `KAFKA_BOOTSTRAP` makes all of this unnecessary.
"""

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from foryou.settings import bootstrap_file, cache_dir, state_dir

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"
HEAP = "512m"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>foryou</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{log4j}</version></dependency>
  </dependencies>
</project>
"""

# Log to a file, warnings only from the chatty packages: the broker's stdout is not read by anyone.
_LOG4J2 = """<Configuration status="WARN">
  <Appenders>
    <File name="file" fileName="{log}"><PatternLayout pattern="[%d] %p %m (%c)%n"/></File>
  </Appenders>
  <Loggers>
    <Logger name="kafka" level="INFO"/>
    <Logger name="org.apache.kafka" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Root level="INFO"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
"""

# Single node: every internal topic with one replica, and a group starts without waiting for more members.
_SERVER_PROPERTIES = """process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={log_dirs}
num.partitions=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.check.interval.ms=60000
"""


@dataclass(frozen=True)
class LocalKafka:
    home: Path  # state: config, data, pid, log

    @property
    def libs(self) -> Path:
        return cache_dir() / f"kafka-{KAFKA_VERSION}" / "libs"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "broker.log"

    def fetch(self) -> None:
        """Resolve the broker's jars from Maven Central once; later calls find them cached."""
        marker = self.libs / ".complete"
        if marker.exists():
            return
        build = self.libs.parent
        build.mkdir(parents=True, exist_ok=True)
        (build / "pom.xml").write_text(_POM.format(kafka=KAFKA_VERSION, log4j=LOG4J_VERSION))
        print(f"fetching Apache Kafka {KAFKA_VERSION} from Maven Central into {self.libs}", file=sys.stderr)
        cmd = [
            "mvn", "-q", "-B", "-f", str(build / "pom.xml"), "dependency:copy-dependencies",
            f"-DoutputDirectory={self.libs}", "-DincludeScope=runtime",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"maven could not fetch Kafka:\n{result.stdout}\n{result.stderr}")
        marker.write_text(KAFKA_VERSION)

    def running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    @property
    def bootstrap_file(self) -> Path:
        return self.home / "bootstrap"

    def bootstrap(self) -> str | None:
        return self.bootstrap_file.read_text().strip() if self.bootstrap_file.exists() else None

    def start(self, timeout_s: float = 60.0, *, fresh: bool = False) -> str:
        """Start the broker unless it runs already; returns its bootstrap address once it answers.
        `fresh` starts an empty cluster (the test suite's: no topics or history from earlier runs)."""
        address = self.bootstrap()
        if not fresh and self.running_pid() and address and _answers(address):
            return address
        self.stop()
        self.fetch()
        if fresh:
            shutil.rmtree(self.home / "data", ignore_errors=True)
        self.home.mkdir(parents=True, exist_ok=True)
        config = self.home / "server.properties"
        (self.home / "log4j2.xml").write_text(_LOG4J2.format(log=self.log_file))
        classpath = f"{self.libs}/*"
        log_config = f"-Dlog4j2.configurationFile={self.home / 'log4j2.xml'}"
        java = ["java", f"-Xmx{HEAP}", f"-Xms{HEAP}", log_config]
        port = self._reusable_port()
        if port is None:
            # The quorum's ports live in the formatted metadata: new ports mean a newly formatted store.
            port, controller_port = _free_port(), _free_port()
            data = self.home / "data"
            shutil.rmtree(data, ignore_errors=True)
            (self.home / "ports").write_text(f"{port} {controller_port}")
            config.write_text(
                _SERVER_PROPERTIES.format(port=port, controller_port=controller_port, log_dirs=data)
            )
            fmt = subprocess.run(
                [*java, "-cp", classpath, "kafka.tools.StorageTool", "format", f"--cluster-id={_cluster_id()}",
                 "-c", str(config)],
                capture_output=True, text=True,
            )
            if fmt.returncode != 0:
                raise SystemExit(f"kafka storage format failed:\n{fmt.stdout}\n{fmt.stderr}")
        with open(self.home / "broker.out", "ab") as out:
            proc = subprocess.Popen(
                [*java, "-XX:+UseG1GC", "-cp", classpath, "kafka.Kafka", str(config)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"kafka exited with {proc.returncode}; see {self.home / 'broker.out'}")
            if _answers(address):
                self.bootstrap_file.write_text(address)
                return address
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"kafka did not answer on {address} within {timeout_s:.0f}s; see {self.log_file}")

    def _reusable_port(self) -> int | None:
        """The broker port of an earlier, formatted store whose ports are still free, so data survives."""
        ports_file = self.home / "ports"
        if not (self.home / "data" / "meta.properties").exists() or not ports_file.exists():
            return None
        ports = [int(p) for p in ports_file.read_text().split()]
        return ports[0] if all(_port_free(p) for p in ports) else None

    def stop(self, timeout_s: float = 20.0) -> bool:
        """Stop the broker if it runs; True when one was stopped."""
        pid = self.running_pid()
        self.bootstrap_file.unlink(missing_ok=True)
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.running_pid():
            time.sleep(0.2)
        if self.running_pid():
            os.killpg(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True


def local_kafka() -> LocalKafka:
    """The development broker; its address file is where `foryou.settings.kafka_bootstrap` looks."""
    return LocalKafka(bootstrap_file().parent)


def kafka_for_tests() -> LocalKafka:
    """A test session's own broker, beside the development one and any other session's (by process id)."""
    return LocalKafka(state_dir() / "kafka-test" / str(os.getpid()))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _cluster_id() -> str:
    # Kafka cluster ids are 16 random bytes in URL-safe base64 without padding (22 characters); one may
    # start with "-", hence `--cluster-id=` in one argument.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _answers(address: str, timeout_s: float = 3.0) -> bool:
    """True when a broker at `address` answers a metadata request (not merely accepts TCP)."""
    from confluent_kafka.admin import AdminClient

    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            pass
    except OSError:
        return False
    admin = AdminClient({"bootstrap.servers": address, "log_level": 0})
    try:
        admin.list_topics(timeout=timeout_s)
    except Exception:  # any failure means "not ready yet"
        return False
    return True
