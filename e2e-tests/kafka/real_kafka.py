"""Real Apache Kafka for tests: fetched from Maven Central with Maven, one KRaft broker on 127.0.0.1, data on disk.

The jars (kafka_2.13 and its runtime dependencies) are cached under ~/.cache/turnforge/kafka/<version>/libs (or
$TURNFORGE_KAFKA_CACHE), so only the first run downloads; later starts take seconds. The broker is both controller
and broker (no ZooKeeper); its log directory survives a restart, which is what the fault suite relies on.

    python e2e-tests/kafka/real_kafka.py fetch           # download once, print the time it took
    python e2e-tests/kafka/real_kafka.py start DATA_DIR  # run a broker in the foreground until Ctrl-C
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from shared.runtime import readiness

KAFKA_VERSION = os.environ.get("TURNFORGE_KAFKA_VERSION", "3.9.1")
SCALA_VERSION = "2.13"
SLF4J_VERSION = "1.7.36"

POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>turnforge</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_{scala}</artifactId><version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-storage</artifactId><version>{kafka}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>{slf4j}</version></dependency>
  </dependencies>
</project>
"""

LOG4J = """log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
"""


def cache_dir() -> Path:
    root = os.environ.get("TURNFORGE_KAFKA_CACHE") or Path.home() / ".cache" / "turnforge" / "kafka"
    return Path(root) / KAFKA_VERSION


def libs_dir() -> Path:
    return cache_dir() / "libs"


def fetch() -> float:
    """Download Kafka's jars once (Maven's own repository is kept in the cache too); returns seconds spent."""
    done = cache_dir() / ".complete"
    if done.exists():
        return 0.0
    if shutil.which("mvn") is None or shutil.which("java") is None:
        raise RuntimeError("real Kafka needs Java 17+ and Maven on PATH (apt-get install openjdk-17-jre-headless maven)")
    started = time.monotonic()
    work = cache_dir()
    work.mkdir(parents=True, exist_ok=True)
    (work / "pom.xml").write_text(POM.format(scala=SCALA_VERSION, kafka=KAFKA_VERSION, slf4j=SLF4J_VERSION))
    staging = work / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    cmd = ["mvn", "-q", "-B", "-f", str(work / "pom.xml"), f"-Dmaven.repo.local={work.parent / 'm2'}",
           "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
           f"-DoutputDirectory={staging}", "-DincludeScope=runtime"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"maven could not fetch Kafka {KAFKA_VERSION}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    shutil.rmtree(libs_dir(), ignore_errors=True)
    staging.rename(libs_dir())
    (work / "log4j.properties").write_text(LOG4J)
    done.write_text(f"{time.monotonic() - started:.1f}\n")
    return time.monotonic() - started


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class KafkaBroker:
    """One KRaft broker+controller. Ports and log directory stay the same across restarts."""

    data_dir: Path
    port: int = field(default_factory=_free_port)
    controller_port: int = field(default_factory=_free_port)
    heap: str = "512m"
    process: subprocess.Popen | None = None
    start_s: float = 0.0  # how long the last start took until the broker served metadata

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "kafka.log"

    def _java(self, main: str, *args: str) -> list[str]:
        return ["java", f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Djava.awt.headless=true", f"-Dlog4j.configuration=file:{cache_dir() / 'log4j.properties'}",
                "-cp", f"{libs_dir()}/*", main, *args]

    def _write_properties(self) -> Path:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir / "log"),
            "num.partitions": "1",
            # One broker: every internal topic has one replica, and few partitions keep start-up quick.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
        }
        path = self.data_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def start(self, timeout_s: float = 90) -> "KafkaBroker":
        fetch()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        props = self._write_properties()
        if not (self.data_dir / "log" / "meta.properties").exists():
            cluster_id = uuid.uuid4().hex[:22]  # KRaft wants a 22-character id; format once, keep across restarts
            subprocess.run(self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)),
                           check=True, capture_output=True, text=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self._java("kafka.Kafka", str(props)), stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        readiness.wait_ready("Kafka", self._serves, timeout_s - (time.monotonic() - started), interval_s=0.3,
                             alive=lambda: self.process.poll() is None,
                             detail=lambda: f"; see {self.log_path}:\n{self._tail()}")
        self.start_s = time.monotonic() - started
        return self

    def _serves(self) -> bool:
        if not _accepts(self.port):
            return False
        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
            admin.list_topics()
            admin.close()
            return True
        except (KafkaError, OSError):
            return False

    def _tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30) -> None:
        """SIGTERM shuts down cleanly; SIGKILL is a crash. Either way the data directory stays."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def restart(self, sig: int = signal.SIGKILL, pause_s: float = 0.0) -> None:
        self.stop(sig)
        time.sleep(pause_s)
        self.start()


def main(argv: list[str]) -> int:
    if len(argv) >= 1 and argv[0] == "fetch":
        spent = fetch()
        print(f"Kafka {KAFKA_VERSION} in {libs_dir()} ({len(list(libs_dir().glob('*.jar')))} jars); "
              + (f"fetched in {spent:.1f} s" if spent else "already cached"))
        return 0
    if len(argv) >= 2 and argv[0] == "start":
        broker = KafkaBroker(Path(argv[1]).resolve()).start()
        print(f"Kafka {KAFKA_VERSION} on {broker.bootstrap} (ready in {broker.start_s:.1f} s), data in {argv[1]}",
              flush=True)
        try:
            broker.process.wait()
        except KeyboardInterrupt:
            broker.stop()
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
