"""A circuit breaker per tenant: after repeated failures its commands are parked, not retried."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_FAILURES = 5
DEFAULT_COOLDOWN = 30.0
# Past two minutes a recovered receiver would wait too long for its first probe; and Faust
# reports a stream idle for five minutes as stuck.
DEFAULT_MAX_COOLDOWN = 120.0


@dataclass
class Breaker:
    """Closed: calls go through. Open: none until `open_until`. Then half open: one probe at a
    time; its success closes the breaker, its failure opens it again for twice as long."""

    failures_to_open: int = DEFAULT_FAILURES
    cooldown: float = DEFAULT_COOLDOWN
    max_cooldown: float = DEFAULT_MAX_COOLDOWN
    failures: int = 0
    open_until: float = 0.0
    opened: int = 0  # times opened in a row, for the growing cooldown
    probing: bool = False

    def is_open(self, now: float) -> bool:
        """Whether the tenant's work must be parked rather than run now."""
        return self.opened > 0 and (now < self.open_until or self.probing)

    def wait(self, now: float) -> float:
        """Seconds until a probe may go (0 when one may go now)."""
        if self.opened == 0:
            return 0.0
        return max(0.0, self.open_until - now)

    def try_probe(self, now: float) -> bool:
        """Take the single probe of a half-open breaker; True when closed (no probe needed)."""
        if self.opened == 0:
            return True
        if now < self.open_until or self.probing:
            return False
        self.probing = True
        return True

    def succeeded(self) -> None:
        self.failures = 0
        self.opened = 0
        self.open_until = 0.0
        self.probing = False

    def failed(self, now: float) -> None:
        was_probe, self.probing = self.probing, False
        if self.opened > 0:
            if now < self.open_until and not was_probe:
                return  # a call started before the breaker opened: it says nothing new
            self._open(now)
            return
        self.failures += 1
        if self.failures >= self.failures_to_open:
            self._open(now)

    def _open(self, now: float) -> None:
        self.opened += 1
        self.open_until = now + min(self.max_cooldown, self.cooldown * 2 ** (self.opened - 1))
        self.failures = 0


class Breakers:
    """One breaker per tenant, created closed."""

    def __init__(
        self,
        failures_to_open: int = DEFAULT_FAILURES,
        cooldown: float = DEFAULT_COOLDOWN,
        max_cooldown: float = DEFAULT_MAX_COOLDOWN,
    ) -> None:
        self._settings = (failures_to_open, cooldown, max_cooldown)
        self._breakers: dict[str, Breaker] = {}

    def __getitem__(self, tenant: str) -> Breaker:
        breaker = self._breakers.get(tenant)
        if breaker is None:
            failures, cooldown, max_cooldown = self._settings
            breaker = self._breakers[tenant] = Breaker(failures, cooldown, max_cooldown)
        return breaker

    def items(self) -> list[tuple[str, Breaker]]:
        """Every tenant's breaker so far (a copy: safe to read from another thread)."""
        return list(self._breakers.items())
