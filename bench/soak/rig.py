"""The soak's own world: a broker it can restart, reference receivers per mode, worker processes."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from adapters.reference import (
    FaultSpec,
    ReceiverMode,
    ReferenceAuth,
    ReferenceConfig,
    ReferenceReceiver,
    ThreadedReceiver,
)
from demo.command import reference_tenant, seed_receiver
from demo.scenario import Scenario, build_scenario
from demo.worker import start_worker, stop_worker, worker_env
from streams.kafka.local import LocalKafka, free_port
from streams.kafka.topics import design_topics, ensure_topics
from streams.settings import KafkaSettings, LocalKafkaSettings, TopicSettings
from streams.tenancy.publishing import publish_tenant

#: The receivers' password: resolved by the workers from their environment, never in Kafka.
SOAK_SECRET = "S0ak-Receiver-Pa55-7e11"
SECRET_REF = "RECEIVER_SOAK_PASSWORD"

#: Every receiver answers in 20-50 ms, as a real one would: a kill -9 finds calls under way.
BASELINE = FaultSpec(latency_ms=20, jitter_ms=30)

#: Short retries and timeouts, so a fault shows and heals within a soak's minutes.
WORKER_SETTINGS = {
    "CONNECTOR_RETRY_BASE_DELAY": "0.05",
    "CONNECTOR_RETRY_MAX_DELAY": "1",
    "CONNECTOR_RETRY_MAX_ELAPSED": "8",
    "CONNECTOR_SESSION_TIMEOUT": "6",
    "CONNECTOR_RECEIVER_TIMEOUT": "2",
    "CONNECTOR_RECONCILE_GRACE": "1",
    "CONNECTOR_BREAKER_COOLDOWN": "2",
    "CONNECTOR_LAG_INTERVAL": "0",
}


def awaited(names: list[str], workers: Mapping[str, object]) -> list[str]:
    """The named workers still in the rig; when a later fault stopped every one of them for
    good (a worker killed, started again, then stopped as "stop a worker"), the group left
    instead: its recovery is theirs, and a stopped worker is never ready."""
    return [n for n in names if n in workers] or sorted(workers)


def last_error(log: Path) -> str:
    """The last line of a worker's log that says what went wrong (the work dir of a run
    with no defect is deleted: its summary keeps this)."""
    try:
        with log.open("rb") as f:
            f.seek(max(0, log.stat().st_size - 16_384))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return "no log"
    marks = ("CRITICAL", "ERROR", "Error", "error:")
    found = [line for line in lines if any(mark in line for mark in marks)]
    return (found[-1] if found else lines[-1] if lines else "empty log").strip()[:300]


@dataclass
class Tenant:
    """One client: its receiver, its mode and the events drawn for it."""

    client_id: str
    mode: ReceiverMode
    clubs: dict[str, str]
    receiver: ThreadedReceiver
    scenario: Scenario

    @property
    def receiver_client(self) -> str:
        return f"R-{self.client_id}"

    def call(self, fn: Any) -> Any:
        return self.receiver.call(fn)


@dataclass
class Rig:
    """Everything one soak run starts, and stops at the end."""

    workdir: Path
    prefix: str
    kafka_settings: KafkaSettings = field(default_factory=KafkaSettings)
    tenants: dict[str, Tenant] = field(default_factory=dict)
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    #: Workers that exited by themselves (name and exit status), each started again.
    exits: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.port = free_port()
        self.broker = LocalKafka(
            LocalKafkaSettings(state_dir=self.workdir / "kafka", kafka_port=self.port)
        )
        self.topics = TopicSettings(topic_prefix=self.prefix)
        self.app_id = f"soak-{self.prefix.strip('.')}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- broker -----------------------------------------------------------------------------
    def start_broker(self) -> None:
        self.broker.up(port=self.port)

    def restart_broker(self) -> None:
        """Stop the broker (SIGTERM, as a rolling restart does) and start it on the same port."""
        self.broker.down()
        self.broker.up(port=self.port)

    def ensure_topics(self) -> None:
        result = ensure_topics(self.bootstrap, self.kafka_settings, design_topics(self.topics))
        if result.mismatched:
            raise SystemExit(f"topics mismatched: {result.mismatched}")

    # -- receivers and tenants --------------------------------------------------------------
    def add_tenant(self, client_id: str, mode: ReceiverMode, events: int, seed: int) -> Tenant:
        clubs = {f"{client_id}{n}": f"C{n}" for n in (1, 2, 3)}
        receiver_client = f"R-{client_id}"
        auth = ReferenceAuth(kind="basic", secret=SecretStr(SOAK_SECRET))
        reference = ReferenceReceiver(
            ReferenceConfig(
                mode=mode,
                clients={receiver_client: list(clubs.values())},
                auth=auth,
                seed=seed,
                faults=BASELINE,
            )
        )
        threaded = ThreadedReceiver(reference)
        threaded.start()
        scenario = build_scenario(seed, events, client_id, list(clubs))
        seed_receiver(threaded, receiver_client, scenario)
        record = reference_tenant(reference, client_id, receiver_client, clubs, SECRET_REF)
        publish_tenant(
            self.bootstrap, self.kafka_settings, self.topics.name(self.topics.tenants_topic), record
        )
        tenant = Tenant(client_id, mode, clubs, threaded, scenario)
        self.tenants[client_id] = tenant
        return tenant

    # -- workers ----------------------------------------------------------------------------
    def env(self, name: str) -> dict[str, str]:
        return worker_env(
            bootstrap=self.bootstrap,
            topic_prefix=self.prefix,
            app_id=self.app_id,
            data_dir=self.workdir / f"data-{name}",
            CONNECTOR_METRICS_PORT=str(self.ports[name]),
            **{SECRET_REF: SOAK_SECRET},
            **WORKER_SETTINGS,
        )

    def start_worker(self, name: str, *, fresh: bool = False) -> None:
        """Start worker `name` (again); `fresh` deletes its data directory first."""
        if fresh:
            shutil.rmtree(self.workdir / f"data-{name}", ignore_errors=True)
        self.ports.setdefault(name, free_port())
        self.workers[name] = start_worker(self.env(name), self.workdir / f"{name}.log")

    def kill_worker(self, name: str) -> None:
        stop_worker(self.workers[name], kill=True)

    def stop_worker(self, name: str) -> int:
        return stop_worker(self.workers.pop(name))

    def revive(self) -> list[str]:
        """Start again every worker that exited by itself, as a supervisor would."""
        dead = [n for n, p in self.workers.items() if p.poll() is not None]
        for name in dead:
            why = last_error(self.workdir / f"{name}.log")
            self.exits.append(f"{name} exit {self.workers[name].returncode}: {why}")
            self.start_worker(name)
        return dead

    def ready(self, name: str) -> bool:
        """The worker's `/ready` answers 200 (readers alive, partitions held, state current)."""
        url = f"http://127.0.0.1:{self.ports[name]}/ready"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(json.loads(response.read()).get("ready"))
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def wait_ready(self, names: list[str], timeout: float = 180.0) -> float:
        """Seconds until every named worker answers ready (see `awaited`)."""
        started = time.monotonic()
        while not all(self.ready(n) for n in awaited(names, self.workers)):
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"workers {names} not ready after {timeout:.0f}s")
            time.sleep(0.2)
        return time.monotonic() - started

    def worker_of_pid(self, pid: int) -> str | None:
        return next((n for n, p in self.workers.items() if p.pid == pid), None)

    def close(self) -> None:
        for process in self.workers.values():
            stop_worker(process)
        for tenant in self.tenants.values():
            tenant.receiver.stop()
        self.broker.down()
