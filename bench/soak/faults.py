"""The seeded fault schedule of a soak, and what each fault does to the rig."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from adapters.reference import FaultSpec
from bench.soak.rig import BASELINE, Rig, Tenant


@dataclass
class Fault:
    """One injected fault: when, what, and how long the pipeline took to recover from it."""

    name: str
    at: float  # seconds into the stream
    detail: str = ""
    client: str | None = None  # a receiver fault: the tenant whose outcomes show recovery
    started: float = 0.0  # wall clock
    ended: float = 0.0
    recovered_s: float | None = None
    in_flight_calls: int | None = None  # kill -9: the victim's receiver calls at that moment


@dataclass
class Step:
    at: float
    run: Callable[[], None]


@dataclass
class Schedule:
    """Every step of the faults, in time order, drawn from one seed."""

    steps: list[Step] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def run(self, rig: Rig, began: float, stop: threading.Event) -> None:
        done: set[int] = set()
        # Steps may add steps (a receiver fault schedules its own end): look again each time.
        while pending := [s for s in self.steps if id(s) not in done]:
            step = min(pending, key=lambda s: s.at)
            done.add(id(step))
            while not stop.is_set() and time.monotonic() < began + step.at:
                rig.revive()
                time.sleep(0.05)
            if stop.is_set():
                return
            step.run()

    def measure(self, fault: Fault, check: Callable[[], float]) -> None:
        """Time recovery in the background, so later faults keep their schedule."""

        def run() -> None:
            try:
                fault.recovered_s = round(check(), 1)
            except TimeoutError:
                fault.recovered_s = None

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)

    def join(self, rig: Rig, timeout: float = 300.0) -> None:
        """Wait for the recovery timings, restarting any worker that exits meanwhile."""
        deadline = time.monotonic() + timeout
        while any(t.is_alive() for t in self._threads) and time.monotonic() < deadline:
            rig.revive()
            time.sleep(0.1)


def calls_in_flight(tenants: dict[str, Tenant], pid: int) -> int:
    """Receiver calls of worker `pid` that have started and not yet been answered."""
    agent = f"(pid {pid})"
    total = 0
    for tenant in tenants.values():
        counts = tenant.call(lambda t=tenant: dict(t.receiver.receiver.in_flight_by_agent))
        total += sum(n for a, n in counts.items() if a.endswith(agent))
    return total


def back_to_baseline(tenant: Tenant) -> None:
    """The receiver's own latency again, no injected fault, no outage."""
    faults = tenant.receiver.receiver.faults
    faults.start_outage(0)
    faults.replace(BASELINE, {})


def build_schedule(
    rig: Rig, seed: int, duration: float, outage_s: float, kills: int, on_bad: Callable[[], None]
) -> Schedule:
    """Faults spread over `duration` seconds of stream, drawn from `seed`."""
    rng = random.Random(f"soak-faults-{seed}")
    plan = Schedule()
    tenants = list(rig.tenants.values())
    outage_t, storm_t, late_t = tenants[0], tenants[1 % len(tenants)], tenants[2 % len(tenants)]

    def fault(name: str, at: float, detail: str = "", client: str | None = None) -> Fault:
        made = Fault(name, round(at, 1), detail, client)
        plan.faults.append(made)
        return made

    def at(share: float) -> float:
        return share * duration

    def kill(f: Fault) -> None:
        # Prefer a worker with a receiver call under way: kill it between call and outcome.
        f.started = time.time()
        names = [n for n, p in rig.workers.items() if p.poll() is None]
        deadline = time.monotonic() + 5
        victim, calls = rng.choice(names), 0
        while time.monotonic() < deadline:
            busy = [(n, calls_in_flight(rig.tenants, rig.workers[n].pid)) for n in names]
            busy = [b for b in busy if b[1]]
            if busy:
                victim, calls = rng.choice(busy)
                break
            time.sleep(0.02)
        rig.kill_worker(victim)
        f.in_flight_calls = calls
        f.detail = f"{victim} with {calls} call(s) in flight"
        f.ended = time.time()
        rig.start_worker(victim)
        plan.measure(f, lambda: rig.wait_ready([victim]))

    for _ in range(kills):
        f = fault("kill -9 worker", at(rng.uniform(0.05, 0.9)))
        plan.steps.append(Step(f.at, partial(kill, f)))

    def stop_one(f: Fault) -> None:
        f.started = time.time()
        code = rig.stop_worker("w3")
        f.ended = time.time()
        f.detail = f"w3 stopped (exit {code}); w1, w2 take its partitions"
        plan.measure(f, lambda: rig.wait_ready(["w1", "w2"]))

    def add_one(f: Fault) -> None:
        f.started = f.ended = time.time()
        rig.start_worker("w4")
        plan.measure(f, lambda: rig.wait_ready(["w4"]))

    def fresh(f: Fault) -> None:
        f.started = time.time()
        rig.stop_worker("w2")
        f.ended = time.time()
        rig.start_worker("w2", fresh=True)
        plan.measure(f, lambda: rig.wait_ready(["w2"]))

    for name, share, action, detail in (
        ("stop a worker", 0.3, stop_one, "w3 leaves the group"),
        ("add a worker", 0.4, add_one, "w4 joins the group"),
        ("restart with empty data dir", 0.5, fresh, "w2's data dir deleted"),
    ):
        f = fault(name, at(share), detail)
        plan.steps.append(Step(f.at, partial(action, f)))

    # Receiver faults, each on its own tenant.
    def receiver_window(
        f: Fault, tenant: Tenant, begin: Callable[[], None], seconds: float
    ) -> None:
        f.started = time.time()
        tenant.call(begin)
        end = f.at + seconds

        def clear() -> None:
            tenant.call(partial(back_to_baseline, tenant))
            f.ended = time.time()

        plan.steps.append(Step(end, clear))

    faults_of = {t.client_id: t.receiver.receiver.faults for t in tenants}
    outage = fault(
        "receiver outage", at(0.15), f"{outage_s / 2:g}s of 503, then {outage_s / 2:g}s of hangs",
        outage_t.client_id,
    )  # fmt: skip

    def outage_begin() -> None:
        faults_of[outage_t.client_id].start_outage(outage_s / 2)

    def outage_hang() -> None:
        hang = BASELINE.model_copy(update={"timeout_rate": 1.0, "hang_s": outage_s})
        outage_t.call(lambda: faults_of[outage_t.client_id].replace(hang, {}))

    plan.steps.append(
        Step(outage.at, lambda: receiver_window(outage, outage_t, outage_begin, outage_s))
    )
    plan.steps.append(Step(outage.at + outage_s / 2, outage_hang))

    def answering_by(f: Fault, tenant: Tenant, spec: FaultSpec, seconds: float) -> None:
        """From `f.at`, for `seconds`, `tenant`'s receiver answers by `spec`."""

        def begin() -> None:
            faults_of[tenant.client_id].replace(spec, {})

        plan.steps.append(Step(f.at, lambda: receiver_window(f, tenant, begin, seconds)))

    storm = fault("429 storm", at(0.35), "80% of calls 429, Retry-After 1s", storm_t.client_id)
    throttle = BASELINE.model_copy(update={"throttle_rate": 0.8, "retry_after_s": 1.0})
    answering_by(storm, storm_t, throttle, 20)
    late = fault(
        "apply-then-time-out", at(0.55),
        "30% of calls applied, answer held (20%) or trickled a byte at a time (10%) past the "
        "timeout", late_t.client_id,
    )  # fmt: skip
    applied = BASELINE.model_copy(
        update={"apply_then_timeout_rate": 0.2, "apply_then_trickle_rate": 0.1, "hang_s": 4.0}
    )
    answering_by(late, late_t, applied, 20)

    broker = fault("broker restart", at(0.7), "SIGTERM, then up again on the same port")

    def restart_broker() -> None:
        broker.started = time.time()
        rig.restart_broker()
        broker.ended = time.time()

    plan.steps.append(Step(broker.at, restart_broker))
    plan.steps.append(Step(at(0.1), on_bad))
    return plan
