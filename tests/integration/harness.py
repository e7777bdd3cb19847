"""A real pipeline for end-to-end tests: topics, reference receivers, tenants, a worker process."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka import Producer
from pydantic import SecretStr

from adapters.reference import (
    ReceiverMode,
    ReferenceAuth,
    ReferenceConfig,
    ReferenceReceiver,
    ThreadedReceiver,
)
from adapters.reference.faults import NO_FAULTS, FaultSpec
from demo.command import reference_tenant
from demo.worker import start_worker, stop_worker, worker_env
from streams.avro.codec import Codecs
from streams.avro.registry import FileRegistry
from streams.core.model import FINAL_STATUSES
from streams.kafka.lag import group_lag
from streams.kafka.reader import read_to_end
from streams.kafka.topics import design_topics, ensure_topics
from streams.settings import KafkaSettings, TopicSettings
from streams.tenancy.publishing import publish_tenant

T = TypeVar("T")
NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def connector(
    env: dict[str, str], *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run the `connector` command line in its own process, as a user would."""
    return subprocess.run(
        [sys.executable, "-X", "faulthandler", "-m", "streams.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 60.0) -> T:
    """Poll `check` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def user_event(client_id: str, intouch_id: str, version: int, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()), "occurred_at": NOW, "client_id": client_id,
        "club_id": "7", "intouch_id": intouch_id, "version": version,
        "user_type": "PROSPECT", "status": "ACTIVE", "first_name": "Pete",
        "last_name": "Prospect", "email": None, "birthdate": None, "gender": None,
        "address1": None, "address2": None, "city": None, "zipcode": None, "state": None,
        "country": None, "mobile_phone": None, "home_phone": None, "work_phone": None,
        "company": None, "staff_owner_id": None, "lead_source_id": None,
    }  # fmt: skip
    event.update(fields)
    return event


def staff_event(client_id: str, intouch_id: str, version: int, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()), "occurred_at": NOW, "client_id": client_id,
        "club_id": None, "intouch_id": intouch_id, "version": version,
        "first_name": "John", "last_name": "Staff", "email": None, "status": "ACTIVE",
    }  # fmt: skip
    event.update(fields)
    return event


def lead_source_event(client_id: str, intouch_id: str, version: int, name: str) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()), "occurred_at": NOW, "client_id": client_id,
        "club_id": None, "intouch_id": intouch_id, "version": version, "name": name,
    }  # fmt: skip


@dataclass
class Pipeline:
    """Everything one test module's pipeline needs, bound to one topic prefix."""

    bootstrap: str
    prefix: str
    workdir: Path
    codecs: Codecs = field(default_factory=lambda: Codecs(FileRegistry()))
    receivers: dict[str, ThreadedReceiver] = field(default_factory=dict)
    worker: subprocess.Popen[bytes] | None = None
    more_workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        overrides = {k: v for k, v in self.extra_env.items() if k.endswith("_PARTITIONS")}
        overrides["CONNECTOR_TOPIC_PREFIX"] = self.prefix
        os.environ.update(overrides)
        try:
            self.topics = TopicSettings()
        finally:
            for name in overrides:
                del os.environ[name]
        self.kafka = KafkaSettings()
        result = ensure_topics(self.bootstrap, self.kafka, design_topics(self.topics))
        assert not result.mismatched
        self.producer = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True})
        self.app_id = f"app-{self.prefix.strip('.')}"

    def topic(self, base: str) -> str:
        return self.topics.name(base)

    # -- receivers and tenants --------------------------------------------------------------
    def add_receiver(
        self,
        client_id: str,
        mode: ReceiverMode = ReceiverMode.FULL,
        *,
        secret: str | None = None,
        options: dict[str, str] | None = None,
        **config: Any,
    ) -> ThreadedReceiver:
        """A reference receiver turned up for `client_id`; with `secret`, behind basic auth."""
        if secret is not None:
            config["auth"] = ReferenceAuth(kind="basic", secret=SecretStr(secret))
        self.start_receiver(client_id, mode, **config)
        self.turn_up(client_id, secret=secret, options=options)
        return self.receivers[client_id]

    def start_receiver(
        self, client_id: str, mode: ReceiverMode = ReceiverMode.FULL, **config: Any
    ) -> ThreadedReceiver:
        """A reference receiver in `mode`, turned up for `client_id` with clubs 7, 8, 9."""
        receiver_client = f"R-{client_id}"
        reference = ReferenceReceiver(
            ReferenceConfig(mode=mode, clients={receiver_client: ["C7", "C8", "C9"]}, **config)
        )
        threaded = ThreadedReceiver(reference)
        threaded.start()
        self.receivers[client_id] = threaded
        return threaded

    def turn_up(
        self, client_id: str, secret: str | None = None, options: dict[str, str] | None = None
    ) -> None:
        reference = self.receivers[client_id].receiver
        secret_ref = None
        if secret is not None:
            # The worker resolves the reference from its environment; Kafka never sees it.
            secret_ref = f"RECEIVER_{client_id.upper()}_PASSWORD"
            self.extra_env[secret_ref] = secret
        receiver_client = f"R-{client_id}"
        clubs = {"7": "C7", "8": "C8", "9": "C9"}
        tenant = reference_tenant(reference, client_id, receiver_client, clubs, secret_ref, options)
        publish_tenant(self.bootstrap, self.kafka, self.topic(self.topics.tenants_topic), tenant)

    def seed_staff(self, client_id: str, staff_id: str, email: str, name: str) -> None:
        receiver = self.receivers[client_id]
        store = receiver.receiver.store
        receiver.call(lambda: store.seed_staff(f"R-{client_id}", email, name, staff_id=staff_id))

    def seed_lead_source(self, client_id: str, name: str) -> str:
        receiver = self.receivers[client_id]
        store = receiver.receiver.store
        record = receiver.call(lambda: store.create_lead_source(f"R-{client_id}", {"name": name}))
        return str(record["id"])

    def receiver_state(self, client_id: str) -> dict[str, Any]:
        receiver = self.receivers[client_id]
        state: dict[str, Any] = receiver.call(receiver.receiver.state)
        return dict(state["clients"][f"R-{client_id}"])

    def people(self, client_id: str) -> list[dict[str, Any]]:
        """Every prospect and member the receiver holds for the client, with kind and club."""
        out = []
        for club_id, club in self.receiver_state(client_id)["clubs"].items():
            for kind in ("prospects", "members"):
                for person in club[kind].values():
                    out.append({**person, "_kind": kind[:-1], "_club": club_id})
        return out

    def calls(self, client_id: str) -> dict[str, int]:
        receiver = self.receivers[client_id]
        log = receiver.call(lambda: receiver.receiver.calls.as_json())
        return dict(log["by_route"])

    # -- events -----------------------------------------------------------------------------
    def send(self, subject: str, event: dict[str, Any]) -> None:
        entity, base = {
            "UserChanged": ("USER", self.topics.users_topic),
            "StaffChanged": ("STAFF", self.topics.staff_topic),
            "LeadSourceChanged": ("LEAD_SOURCE", self.topics.lead_sources_topic),
        }[subject]
        key = {"client_id": event["client_id"], "entity": entity, "intouch_id": event["intouch_id"]}
        self.send_raw(
            base, self.codecs["EntityKey"].encode(key), self.codecs[subject].encode(event)
        )

    def send_raw(
        self,
        base: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self.producer.produce(self.topic(base), key=key, value=value, headers=headers)
        assert self.producer.flush(30) == 0

    def read(self, base: str, subject: str) -> list[dict[str, Any]]:
        """Every record on a topic so far, decoded."""
        codec = self.codecs[subject]
        return [
            codec.decode(m.value())
            for m in read_to_end(self.bootstrap, self.kafka, [self.topic(base)])
        ]

    def outcomes(self, client_id: str | None = None) -> list[dict[str, Any]]:
        rows = self.read(self.topics.outcomes_topic, "Outcome")
        return [r for r in rows if client_id is None or r["client_id"] == client_id]

    def dead_letters(self) -> list[dict[str, Any]]:
        return self.read(self.topics.dlq_topic, "DeadLetter")

    def wait_outcome(
        self, client_id: str, intouch_id: str, version: int, timeout: float = 60.0
    ) -> dict[str, Any]:
        """The final outcome of the entity's command for `version` (pending markers skipped)."""
        return self.wait_outcomes(client_id, [intouch_id], version, timeout)[intouch_id]

    def wait_outcomes(
        self, client_id: str, intouch_ids: Iterable[str], version: int, timeout: float = 60.0
    ) -> dict[str, dict[str, Any]]:
        """`wait_outcome` for many entities, the outcomes read once per look for all of them
        (one read per entity and look cost seconds); `timeout` counts from the latest outcome
        found, as it does when `wait_outcome` is called for one entity after another."""
        wanted = list(dict.fromkeys(intouch_ids))
        pending = set(wanted)
        found: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while True:
            before = len(found)
            for row in reversed(self.outcomes(client_id)):
                if (
                    row["intouch_id"] in pending
                    and row["version"] >= version
                    and row["status"] in FINAL_STATUSES
                ):
                    found[row["intouch_id"]] = row
                    pending.discard(row["intouch_id"])
            if len(found) == len(wanted):
                return {intouch_id: found[intouch_id] for intouch_id in wanted}
            if len(found) > before:
                deadline = time.monotonic() + timeout
            elif time.monotonic() > deadline:
                missing = [i for i in wanted if i in pending]
                raise AssertionError(
                    f"timed out after {timeout:.0f}s waiting for an outcome for "
                    f"{client_id}/{missing[0]} v{version} ({len(missing)} missing: {missing[:10]})"
                )
            time.sleep(0.1)

    # -- worker -----------------------------------------------------------------------------
    def env(self, data: str = "data") -> dict[str, str]:
        return worker_env(
            bootstrap=self.bootstrap,
            topic_prefix=self.prefix,
            app_id=self.app_id,
            data_dir=self.workdir / data,
            **{
                "CONNECTOR_RETRY_BASE_DELAY": "0.05",
                "CONNECTOR_RETRY_MAX_DELAY": "0.5",
                "CONNECTOR_RETRY_MAX_ELAPSED": "10",
                "CONNECTOR_SESSION_TIMEOUT": "6",
                **self.extra_env,  # a test's own settings win
            },
        )

    def start_worker(self) -> None:
        assert self.worker is None or self.worker.poll() is not None
        self.worker = start_worker(self.env(), self.workdir / "worker.log")

    def start_more_workers(self, count: int) -> list[subprocess.Popen[bytes]]:
        """More workers in the same group, each with its own data dir and log (worker-N)."""
        started = []
        for _ in range(count):
            name = f"worker-{len(self.more_workers) + 1}"
            process = start_worker(self.env(name), self.workdir / f"{name}.log")
            self.more_workers.append(process)
            started.append(process)
        return started

    def all_logs(self) -> str:
        return "".join(
            path.read_text(errors="replace") for path in sorted(self.workdir.glob("worker*.log"))
        )

    def committed(self, base: str) -> dict[int, int]:
        """Offsets the worker's consumer group has committed on a topic, per partition."""
        rows = group_lag(self.bootstrap, self.kafka, self.app_id, [self.topic(base)])
        return {r.partition: r.committed for r in rows if r.committed is not None}

    def stop_worker(self, *, kill: bool = False) -> None:
        if self.worker is not None:
            stop_worker(self.worker, kill=kill)
        self.worker = None

    def worker_log(self) -> str:
        path = self.workdir / "worker.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for process in self.more_workers:
            stop_worker(process)
        self.stop_worker()
        for receiver in self.receivers.values():
            receiver.stop()
        self.producer.flush(10)


@contextmanager
def running_pipeline(bootstrap: str, workdir: Path, **extra_env: str) -> Iterator[Pipeline]:
    pipeline = Pipeline(bootstrap, f"e{uuid.uuid4().hex[:8]}.", workdir, extra_env=extra_env)
    try:
        yield pipeline
    finally:
        pipeline.close()


# -- receiver faults and what they leave -------------------------------------------------
def seconds_to_link(
    p: Pipeline, client_id: str, intouch_ids: Iterable[str], timeout: float = 60.0
) -> float:
    """Send version 1 of each user and wait until every one is LINKED: how long it took (a
    tenant's new users, sent while another tenant's receiver misbehaves)."""
    wanted = list(intouch_ids)
    started = time.monotonic()
    for intouch_id in wanted:
        p.send("UserChanged", user_event(client_id, intouch_id, 1))
    outcomes = p.wait_outcomes(client_id, wanted, 1, timeout=timeout)
    assert {o["status"] for o in outcomes.values()} == {"LINKED"}, outcomes
    return time.monotonic() - started


def set_faults(p: Pipeline, client_id: str, **routes: FaultSpec) -> None:
    receiver = p.receivers[client_id]
    receiver.call(lambda: receiver.receiver.faults.replace(NO_FAULTS, routes))


def settled(p: Pipeline, client_id: str) -> bool:
    """No request is being answered: a late apply has landed, nothing is half done."""
    receiver = p.receivers[client_id]
    return bool(receiver.call(lambda: receiver.receiver.in_flight) == 0)


def records_of(p: Pipeline, client_id: str, **match: Any) -> list[dict[str, Any]]:
    return [r for r in p.people(client_id) if all(r.get(k) == v for k, v in match.items())]


def final(p: Pipeline, client_id: str, intouch_id: str, version: int) -> dict[str, Any]:
    outcome = p.wait_outcome(client_id, intouch_id, version, timeout=90)
    wait_for(f"{client_id}'s receiver to settle", lambda: settled(p, client_id), timeout=30)
    return outcome
