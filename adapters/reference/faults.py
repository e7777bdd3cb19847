"""Fault injection plan of the reference receiver: latency, errors, 429s, hangs and outages."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class FaultSpec(BaseModel):
    """Faults for one route (or every route); rates are probabilities per request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    latency_ms: float = Field(default=0.0, ge=0, description="Fixed delay before answering.")
    jitter_ms: float = Field(default=0.0, ge=0, description="Extra uniform random delay.")
    error_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share answered error_status (5xx by default)."
    )
    error_status: int = Field(
        default=503, ge=400, le=599, description="A 4xx makes the injected errors rejections."
    )
    throttle_rate: float = Field(default=0.0, ge=0, le=1, description="Share answered 429.")
    retry_after_s: float = Field(default=1.0, ge=0, description="Retry-After sent with 429s.")
    timeout_rate: float = Field(default=0.0, ge=0, le=1, description="Share left hanging.")
    hang_s: float = Field(default=30.0, gt=0, description="How long a hanging request hangs.")
    apply_then_timeout_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share applied, then answered only after hang_s."
    )
    apply_then_trickle_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share applied, then answered a byte at a time (each well within any read "
        "timeout) for hang_s before the body: a caller that bounds only each read waits it out.",
    )
    late_apply_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share held late_apply_s, then applied."
    )
    late_apply_s: float = Field(
        default=5.0, ge=0, description="How long a late apply waits (past the caller's timeout)."
    )
    limit: int | None = Field(
        default=None,
        ge=0,
        description="At most this many faulty answers; then every request passes.",
    )


NO_FAULTS = FaultSpec()


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What to do to one request, drawn once from the plan."""

    delay_s: float
    action: Literal[
        "pass",
        "error",
        "throttle",
        "hang",
        "outage",
        "apply_then_hang",
        "apply_then_trickle",
        "late_apply",
    ]
    status: int = 200
    retry_after_s: float | None = None
    hang_s: float = 0.0


class FaultPlan:
    """The faults in force: a default spec, per-route specs and an optional outage window."""

    def __init__(
        self,
        default: FaultSpec = NO_FAULTS,
        routes: dict[str, FaultSpec] | None = None,
        *,
        seed: int | None = None,
    ) -> None:
        self.default = default
        self.routes = dict(routes or {})
        self.outage_until: float | None = None
        self._random = random.Random(seed)
        self._faulted: dict[str, int] = {}

    def replace(self, default: FaultSpec, routes: dict[str, FaultSpec]) -> None:
        """Swap every spec at once; an outage in progress carries on."""
        self.default = default
        self.routes = dict(routes)
        self._faulted.clear()

    def clear(self) -> None:
        """No faults, no outage."""
        self.replace(NO_FAULTS, {})
        self.outage_until = None

    def start_outage(self, seconds: float) -> None:
        """Answer every API route 503 for the next `seconds` (0 ends an outage)."""
        self.outage_until = time.monotonic() + seconds if seconds > 0 else None

    def outage_remaining(self) -> float:
        """Seconds left in the outage window, 0 when there is none."""
        if self.outage_until is None:
            return 0.0
        return max(0.0, self.outage_until - time.monotonic())

    def decide(self, route: str) -> FaultDecision:
        """Draw the fate of one request to `route`."""
        remaining = self.outage_remaining()
        if remaining > 0:
            return FaultDecision(0.0, "outage", 503, retry_after_s=remaining)
        spec = self.routes.get(route, self.default)
        decision = self._draw(spec)
        if decision.action != "pass" and spec.limit is not None:
            key = route if route in self.routes else "*"
            if self._faulted.get(key, 0) >= spec.limit:
                return FaultDecision(decision.delay_s, "pass")
            self._faulted[key] = self._faulted.get(key, 0) + 1
        return decision

    def _draw(self, spec: FaultSpec) -> FaultDecision:
        delay = spec.latency_ms / 1000
        if spec.jitter_ms:
            delay += self._random.uniform(0, spec.jitter_ms) / 1000
        draw = self._random.random()
        if draw < spec.timeout_rate:
            return FaultDecision(delay, "hang", hang_s=spec.hang_s)
        draw -= spec.timeout_rate
        if draw < spec.apply_then_timeout_rate:
            return FaultDecision(delay, "apply_then_hang", hang_s=spec.hang_s)
        draw -= spec.apply_then_timeout_rate
        if draw < spec.apply_then_trickle_rate:
            return FaultDecision(delay, "apply_then_trickle", hang_s=spec.hang_s)
        draw -= spec.apply_then_trickle_rate
        if draw < spec.late_apply_rate:
            return FaultDecision(delay, "late_apply", hang_s=spec.late_apply_s)
        draw -= spec.late_apply_rate
        if draw < spec.throttle_rate:
            return FaultDecision(delay, "throttle", 429, retry_after_s=spec.retry_after_s)
        draw -= spec.throttle_rate
        if draw < spec.error_rate:
            return FaultDecision(delay, "error", spec.error_status)
        return FaultDecision(delay, "pass")

    def as_json(self) -> dict[str, Any]:
        """The plan as the admin endpoint shows it."""
        return {
            "default": self.default.model_dump(),
            "routes": {name: spec.model_dump() for name, spec in self.routes.items()},
            "outage_remaining_s": round(self.outage_remaining(), 3),
        }
