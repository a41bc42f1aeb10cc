"""A single-node Apache Kafka (KRaft, combined broker and controller) for development, tests and the demo.

The jars come from Maven Central through Maven (cached under `cache_dir()/kafka-<version>`), the storage is
formatted with Kafka's own StorageTool, and the broker runs on 127.0.0.1 on free ports with a 512 MB heap.
`start` is idempotent: a running broker is reused. `KAFKA_BOOTSTRAP` makes all of this unnecessary.

With a `SaslSslListener` the broker speaks SASL_SSL only (README "Security"): TLS with a given keystore,
SCRAM-SHA-512 users created when the storage is formatted, PLAIN users from JAAS, the controller listener
SASL/PLAIN on loopback, and the StandardAuthorizer denying whatever no ACL allows (`admin` is the super user).
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from foryou.settings import KafkaSecurity, bootstrap_file, cache_dir, librdkafka_config

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
controller.listener.names=CONTROLLER
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

_PLAINTEXT_LISTENERS = """listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
"""

# KRaft controllers cannot use SCRAM (its credentials live in the metadata they serve), so the controller
# listener and the broker's own connections authenticate with PLAIN as `admin`.
_SASL_SSL_LISTENERS = """listeners=SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=SASL_SSL://127.0.0.1:{port}
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
sasl.mechanism.inter.broker.protocol=PLAIN
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config={plain_jaas}
listener.name.sasl_ssl.plain.sasl.jaas.config={plain_jaas}
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location={keystore}
ssl.keystore.password={keystore_password}
ssl.truststore.type=PEM
ssl.truststore.location={cafile}
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
"""


@dataclass(frozen=True)
class SaslSslListener:
    """The broker's SASL_SSL listener: its keystore (PKCS12 holding the broker's key and certificate chain,
    e.g. from deploy/kafka/make-certs.sh), the CA clients trust, and its users (name -> password)."""

    keystore: Path
    keystore_password: str
    cafile: Path
    admin_password: str
    scram_users: Mapping[str, str] = field(default_factory=dict)  # SCRAM-SHA-512, created at format time
    plain_users: Mapping[str, str] = field(default_factory=dict)  # PLAIN, from the listener's JAAS

    def __post_init__(self) -> None:
        for name, secret in [("admin", self.admin_password), *self.scram_users.items(), *self.plain_users.items()]:
            # Both end up inside JAAS or StorageTool arguments: keep them to characters neither needs quoted.
            if not (name.isalnum() and secret.replace("-", "").replace("_", "").isalnum()):
                raise ValueError(f"user {name!r}: names must be alphanumeric, passwords alphanumeric, - or _")

    def security(self, username: str, password: str, mechanism: str = "SCRAM-SHA-512") -> KafkaSecurity:
        """A client's settings for this listener."""
        return KafkaSecurity(protocol="SASL_SSL", sasl_mechanism=mechanism, username=username,
                             password=password, ssl_cafile=str(self.cafile))

    def admin_security(self) -> KafkaSecurity:
        return self.security("admin", self.admin_password, "PLAIN")

    def properties(self, port: int, controller_port: int) -> str:
        users = {"admin": self.admin_password, **self.plain_users}
        plain_jaas = (
            'org.apache.kafka.common.security.plain.PlainLoginModule required '
            f'username="admin" password="{self.admin_password}" '
            + " ".join(f'user_{name}="{secret}"' for name, secret in users.items())
            + ";"
        )
        return _SASL_SSL_LISTENERS.format(
            port=port, controller_port=controller_port, plain_jaas=plain_jaas, keystore=self.keystore,
            keystore_password=self.keystore_password, cafile=self.cafile,
        )

    def format_arguments(self) -> list[str]:
        return [f"--add-scram=SCRAM-SHA-512=[name={name},password={secret}]" for name, secret in
                self.scram_users.items()]


@dataclass(frozen=True)
class LocalKafka:
    home: Path  # state: config, data, pid, log
    sasl_ssl: SaslSslListener | None = None  # None: PLAINTEXT on loopback, no authentication

    @property
    def admin_security(self) -> KafkaSecurity:
        """What this process's own admin calls (readiness probes) use."""
        return self.sasl_ssl.admin_security() if self.sasl_ssl else KafkaSecurity(protocol="PLAINTEXT")

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
        if not fresh and self.running_pid() and address and _answers(address, self.admin_security):
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
            listeners = (
                self.sasl_ssl.properties(port, controller_port) if self.sasl_ssl
                else _PLAINTEXT_LISTENERS.format(port=port, controller_port=controller_port)
            )
            config.write_text(
                _SERVER_PROPERTIES.format(controller_port=controller_port, log_dirs=data) + listeners
            )
            scram = self.sasl_ssl.format_arguments() if self.sasl_ssl else []
            fmt = subprocess.run(
                [*java, "-cp", classpath, "kafka.tools.StorageTool", "format", f"--cluster-id={_cluster_id()}",
                 "-c", str(config), *scram],
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
            if _answers(address, self.admin_security):
                self.bootstrap_file.write_text(address)
                return address
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"kafka did not answer on {address} within {timeout_s:.0f}s; see {self.log_file}")

    def _reusable_port(self) -> int | None:
        """The broker port of an earlier, formatted store whose ports are still free, so data survives."""
        ports_file, config = self.home / "ports", self.home / "server.properties"
        if not (self.home / "data" / "meta.properties").exists() or not ports_file.exists():
            return None
        # A SASL_SSL store is formatted anew at every start: its users and keystore are this start's.
        if self.sasl_ssl is not None or not config.exists() or "SASL_SSL://" in config.read_text():
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


def _answers(address: str, security: KafkaSecurity, timeout_s: float = 3.0) -> bool:
    """True when a broker at `address` answers a metadata request (not merely accepts TCP)."""
    from confluent_kafka.admin import AdminClient

    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            pass
    except OSError:
        return False
    admin = AdminClient(librdkafka_config(address, security, {"log_level": 0}))
    try:
        admin.list_topics(timeout=timeout_s)
    except Exception:  # any failure means "not ready yet"
        return False
    return True
