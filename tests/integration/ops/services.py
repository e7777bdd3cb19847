"""ZooKeeper and Burrow as real processes on 127.0.0.1, for comparing lag statuses with Burrow."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic

from streams.kafka import clients
from streams.kafka.commitlog import OFFSETS_TOPIC
from streams.kafka.jars import java_executable
from streams.kafka.local import free_port
from streams.settings import KafkaSettings
from tests.integration.harness import wait_for
from tests.ops_tools import require_tool

HOST = "127.0.0.1"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _zookeeper_answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as sock:
            sock.sendall(b"srvr")
            return b"Mode:" in sock.recv(4096)
    except OSError:
        return False


@contextmanager
def zookeeper(workdir: Path) -> Iterator[str]:
    """A standalone ZooKeeper from Debian's package on a free loopback port; yields host:port."""
    jar = require_tool("zookeeper")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = workdir / "zoo.cfg"
    config.write_text(
        f"tickTime=2000\ndataDir={workdir / 'data'}\nclientPort={port}\n"
        f"clientPortAddress={HOST}\nadmin.enableServer=false\n"
    )
    log = workdir / "zookeeper.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [java_executable(), "-Xmx128m", "-cp", str(jar),
             "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(config)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:

        def up() -> bool:
            assert process.poll() is None, f"ZooKeeper exited:\n{_tail(log)}"
            return _zookeeper_answers(port)

        wait_for("ZooKeeper to answer", up, timeout=60)
        yield f"{HOST}:{port}"
    finally:
        _stop(process)


def create_offsets_topic(kafka: str) -> None:
    """Make a fresh broker create __consumer_offsets (one commit of a throwaway group)."""
    settings = KafkaSettings()
    admin = clients.admin(kafka, settings)
    for future in admin.create_topics([NewTopic("lag-warmup", 1, 1)]).values():
        future.result(timeout=30)
    consumer = clients.consumer(kafka, settings, "lag-warmup")
    try:

        def committed() -> bool:
            try:
                consumer.commit(offsets=[TopicPartition("lag-warmup", 0, 0)], asynchronous=False)
            except KafkaException:
                return False  # the coordinator is still loading: ask again
            topics = consumer.list_topics(OFFSETS_TOPIC, timeout=10).topics
            found = topics.get(OFFSETS_TOPIC)
            return found is not None and found.error is None and bool(found.partitions)

        wait_for("__consumer_offsets to exist", committed, timeout=60)
    finally:
        consumer.close()


@dataclass(frozen=True)
class BurrowWindow:
    """Burrow's evaluation knobs; `connector lag` is given the same ones."""

    intervals: int = 6
    min_distance: int = 1
    offset_refresh: int = 1


BURROW_CONFIG = """\
[general]
pidfile="{dir}/burrow.pid"

[logging]
filename="{dir}/burrow.log"
level="info"

[zookeeper]
servers=["{zookeeper}"]
timeout=6
root-path="/burrow"

[client-profile.local]
client-id="burrow-lag-test"
kafka-version="2.0.0"

[cluster.local]
class-name="kafka"
servers=["{kafka}"]
client-profile="local"
topic-refresh=1
offset-refresh={window.offset_refresh}

[consumer.local]
class-name="kafka"
cluster="local"
servers=["{kafka}"]
client-profile="local"
group-whitelist="^lag-.*$"

[httpserver.default]
address="{http}"

[storage.default]
class-name="inmemory"
workers=4
intervals={window.intervals}
min-distance={window.min_distance}
expire-group=600

[evaluator.default]
class-name="caching"
expire-cache=1
"""


class Burrow:
    """Burrow's HTTP API for cluster `local`."""

    def __init__(self, base: str, log: Path, process: subprocess.Popen[bytes]) -> None:
        self.base = base
        self.log = log
        self.process = process
        self.http = httpx.Client(base_url=base, timeout=5.0)

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        assert self.process.poll() is None, (
            f"Burrow exited {self.process.returncode}:\n{_tail(self.log.with_suffix('.out'))}"
            f"\n{_tail(self.log)}"
        )
        response = self.http.get(path)
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            body = {}
        return response.status_code, body

    def topics(self) -> list[str]:
        _, body = self.get("/v3/kafka/local/topic")
        return list(body.get("topics") or [])

    def lag(self, group: str) -> dict[str, Any] | None:
        """The group's status (`status`, `partitions` with `status`), None while unknown."""
        code, body = self.get(f"/v3/kafka/local/consumer/{group}/lag")
        if code != 200 or body.get("error"):
            return None
        status: dict[str, Any] = body["status"]
        return status


@contextmanager
def burrow(workdir: Path, kafka: str, zookeeper: str, window: BurrowWindow) -> Iterator[Burrow]:
    """Burrow 1.2.1 from Debian's package, watching `kafka`, its API on a free loopback port.

    Burrow stops at once when __consumer_offsets does not exist yet (a fresh broker creates
    it on the first group request): see `create_offsets_topic`."""
    binary = require_tool("burrow")
    workdir.mkdir(parents=True, exist_ok=True)
    http = f"{HOST}:{free_port()}"
    (workdir / "burrow.toml").write_text(
        BURROW_CONFIG.format(
            dir=workdir, zookeeper=zookeeper, kafka=kafka, http=http, window=window
        )
    )
    out_log = workdir / "burrow.out"
    with out_log.open("ab") as out:
        process = subprocess.Popen(
            [str(binary), "-config-dir", str(workdir)],
            cwd=workdir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    api = Burrow(f"http://{http}", workdir / "burrow.log", process)
    try:

        def up() -> bool:
            try:
                return api.get("/burrow/admin")[0] == 200
            except httpx.HTTPError:
                return False

        wait_for("Burrow's HTTP API", up, timeout=60)
        yield api
    finally:
        api.http.close()
        _stop(process)
