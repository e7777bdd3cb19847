"""A single-node KRaft Apache Kafka broker on 127.0.0.1, run from verified Maven Central jars."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from streams.exceptions import LocalKafkaError
from streams.kafka.jars import Progress, install_jars, java_executable, no_progress
from streams.kafka.secure import SecureMaterial
from streams.settings import KafkaSettings, LocalKafkaSettings

HOST = "127.0.0.1"

LOG4J = """\
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={log}
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
"""


@dataclass(frozen=True)
class BrokerInfo:
    """What `up` wrote down about the broker it started."""

    pid: int
    port: int
    controller_port: int
    version: str
    started_at: float
    #: SASL_SSL on `port`; the broker then talks to itself on plaintext `internal_port`.
    secure: bool = False
    internal_port: int | None = None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the broker binds it: connections of a broker just stopped, still in TIME_WAIT,
        # do not make the port taken (a restart on the same port was refused for a minute).
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


class LocalKafka:
    """Start, stop and inspect the broker whose state lives in `settings.state_dir`."""

    def __init__(self, settings: LocalKafkaSettings | None = None) -> None:
        self.settings = settings or LocalKafkaSettings()
        self.state_dir = self.settings.state_dir
        self.data_dir = self.state_dir / "data"
        self.log_file = self.state_dir / "kafka.log"
        self.info_file = self.state_dir / "broker.json"
        self.pid_file = self.state_dir / "broker.pid"
        self.material = SecureMaterial(self.state_dir / "tls")
        self._process: subprocess.Popen[bytes] | None = None

    # -- inspection -------------------------------------------------------
    def info(self) -> BrokerInfo | None:
        try:
            return BrokerInfo(**json.loads(self.info_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def _alive(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False
        # Only a broker started from this state dir counts, never a reused pid.
        return "kafka.Kafka" in cmdline and str(self.state_dir) in cmdline

    def running(self) -> BrokerInfo | None:
        info = self.info()
        if (
            info
            and self._alive(info.pid)
            and answers_metadata(info.bootstrap, timeout=5.0, kafka=self.client_settings(info))
        ):
            return info
        return None

    def client_settings(self, info: BrokerInfo) -> KafkaSettings:
        """What a client of this broker sets: plaintext, or the secured broker's SASL_SSL."""
        if info.secure:
            return self.material.client_settings(info.bootstrap)
        # Plaintext on loopback, whatever KAFKA_* says of another cluster.
        return KafkaSettings.model_construct(bootstrap_servers=info.bootstrap)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no broker log)"

    # -- lifecycle --------------------------------------------------------
    def up(
        self, port: int | None = None, progress: Progress = no_progress, *, secure: bool = False
    ) -> BrokerInfo:
        """Start the broker, or reuse the one already running; return once it answers.

        `secure` serves clients SASL_SSL only (SCRAM-SHA-512, a certificate of a private CA);
        its data is kept apart from the plaintext broker's."""
        current = self.running()
        if current and current.secure != secure:
            kind = "secured" if current.secure else "plaintext"
            raise LocalKafkaError(
                f"a {kind} local broker already runs on {current.bootstrap}; "
                "`connector kafka down` first to switch"
            )
        if current:
            if port and port != current.port:
                raise LocalKafkaError(
                    f"a local broker already runs on {current.bootstrap}; "
                    "`connector kafka down` first to move it"
                )
            progress(f"reusing the broker on {current.bootstrap}")
            return current
        java = java_executable()
        libs = install_jars(self.settings, progress)
        self.stop_stale()
        previous = self.info()
        port = port or self.settings.kafka_port
        if not port and previous and _port_free(previous.port):
            port = previous.port
        port = port or free_port()
        controller = (
            previous.controller_port
            if previous
            and previous.controller_port != port
            and _port_free(previous.controller_port)
            else free_port()
        )
        if not _port_free(port):
            raise LocalKafkaError(f"port {port} on {HOST} is taken; choose another with --port")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        internal = None
        data_dir = self.data_dir.with_name("data-secure") if secure else self.data_dir
        if secure:
            internal = free_port()
            if not self.material.exists():
                progress(f"making a private CA, the broker's certificate and a SCRAM user in "
                         f"{self.material.folder}")  # fmt: skip
                self.material.create(java)
                # Its storage holds the SCRAM user of an earlier password: format it anew.
                shutil.rmtree(data_dir, ignore_errors=True)
        props = self._write_config(port, controller, data_dir, internal)
        classpath = f"{libs}/*"
        if not (data_dir / "meta.properties").exists():
            self._format(java, classpath, props, secure)
        log4j = self.state_dir / "log4j.properties"
        log4j.write_text(LOG4J.format(log=self.log_file))
        started = time.monotonic()
        progress(f"starting Apache Kafka {self.settings.kafka_version} on {HOST}:{port}")
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                [
                    java,
                    f"-Xmx{self.settings.kafka_heap}",
                    f"-Xms{self.settings.kafka_heap}",
                    "-XX:+UseG1GC",
                    "-Djava.awt.headless=true",
                    f"-Dlog4j.configuration=file:{log4j}",
                    f"-Dkafka.logs.dir={self.state_dir}",
                    "-cp",
                    classpath,
                    "kafka.Kafka",
                    str(props),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._process = proc
        info = BrokerInfo(
            proc.pid, port, controller, self.settings.kafka_version, time.time(), secure, internal
        )
        probe = self.client_settings(info)
        self.pid_file.write_text(f"{proc.pid}\n")
        self.info_file.write_text(json.dumps(asdict(info)))
        deadline = started + self.settings.kafka_start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LocalKafkaError(
                    f"the broker exited with code {proc.returncode}; last lines of "
                    f"{self.log_file}:\n{self.log_tail()}"
                )
            if answers_metadata(info.bootstrap, timeout=2.0, kafka=probe):
                return info
            time.sleep(0.2)
        self.down()
        raise LocalKafkaError(
            f"the broker did not answer metadata requests within "
            f"{self.settings.kafka_start_timeout:.0f}s; last lines of {self.log_file}:\n"
            f"{self.log_tail()}"
        )

    def stop_stale(self) -> None:
        """Stop a broker of ours that runs but does not answer (e.g. half started)."""
        info = self.info()
        if info and self._alive(info.pid):
            self._terminate(info.pid)

    def down(self) -> bool:
        """Stop the broker this state dir started; False when none was running."""
        info = self.info()
        stopped = False
        if info and self._alive(info.pid):
            self._terminate(info.pid)
            stopped = True
        if self._process is not None:
            self._process.wait(timeout=30)
            self._process = None
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
        return stopped

    def _terminate(self, pid: int, grace: float = 30.0) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and self._alive(pid):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)
        if self._alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _write_config(
        self, port: int, controller: int, data_dir: Path, internal: int | None
    ) -> Path:
        props = self.state_dir / "server.properties"
        lines = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{HOST}:{controller}",
            "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(data_dir),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "min.insync.replicas": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Topics exist only through `connector topics ensure` (DESIGN.md pitfalls).
            "auto.create.topics.enable": "false",
            "log.segment.bytes": str(64 * 1024 * 1024),
            "log.retention.check.interval.ms": "60000",
        }
        if internal is not None:
            # Clients get SASL_SSL only; the broker's own traffic stays plaintext on loopback.
            lines.update(
                {
                    "listeners": f"SASL_SSL://{HOST}:{port},INTERNAL://{HOST}:{internal},"
                    f"CONTROLLER://{HOST}:{controller}",
                    "advertised.listeners": f"SASL_SSL://{HOST}:{port},INTERNAL://{HOST}:{internal}",
                    "listener.security.protocol.map": "SASL_SSL:SASL_SSL,INTERNAL:PLAINTEXT,"
                    "CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name": "INTERNAL",
                    **self.material.broker_properties("SASL_SSL"),
                }
            )
        props.unlink(missing_ok=True)  # it may hold the keystore password: owner only
        fd = os.open(props, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("".join(f"{k}={v}\n" for k, v in lines.items()))
        return props

    def _format(self, java: str, classpath: str, props: Path, secure: bool) -> None:
        cluster_id = "-"
        while cluster_id.startswith("-"):  # the storage tool would read it as an option
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            [
                java,
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(props),
                *(["--add-scram", self.material.scram_argument()] if secure else []),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise LocalKafkaError(
                f"formatting the broker storage failed:\n{result.stdout}{result.stderr}"
            )


def answers_metadata(
    bootstrap: str, timeout: float = 5.0, kafka: KafkaSettings | None = None
) -> bool:
    """True when a broker at `bootstrap` answers a metadata request in time (as a client
    with `kafka`'s security settings; plaintext when None)."""
    from streams.kafka import clients

    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=min(timeout, 2.0)).close()
    except (OSError, ValueError):
        return False
    silent = logging.getLogger("streams.kafka.local.probe")
    silent.addHandler(logging.NullHandler())
    silent.propagate = False
    admin = clients.admin(
        bootstrap,
        kafka or KafkaSettings.model_construct(),
        {"socket.connection.setup.timeout.ms": "2000"},
        logger=silent,
        checked=False,
    )
    try:
        admin.list_topics(timeout=timeout)
    except Exception:
        return False
    return True
