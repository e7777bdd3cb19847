"""Where an operation starts and stops in a topic: instants, durations and clamped ranges."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from streams.exceptions import ConfigurationError

_ISO_DURATION = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
_SHORT_DURATION = re.compile(r"^(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>[smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> dt.timedelta:
    """An ISO 8601 duration without years or months (`P1D`, `PT2H30M`, `P1DT6H`), or a short
    one (`90s`, `15m`, `2h`, `1d`, `1w`)."""
    given = text.strip()
    short = _SHORT_DURATION.match(given.lower())
    if short:
        return dt.timedelta(seconds=float(short["n"]) * _UNIT_SECONDS[short["unit"]])
    iso = _ISO_DURATION.match(given.upper())
    if iso is None or given.upper() in ("P", "PT") or given.upper().endswith("T"):
        raise ConfigurationError(
            f"{text!r} is no duration: give ISO 8601 like P1D, PT2H, P1DT6H30M (no years or "
            "months), or 90s, 15m, 2h, 1d"
        )
    parts = {k: float(v) for k, v in iso.groupdict().items() if v}
    return dt.timedelta(
        weeks=parts.get("w", 0),
        days=parts.get("d", 0),
        hours=parts.get("h", 0),
        minutes=parts.get("m", 0),
        seconds=parts.get("s", 0),
    )


def parse_instant(text: str) -> dt.datetime:
    """An ISO 8601 date or date and time; without an offset it is UTC."""
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigurationError(
            f"{text!r} is no ISO 8601 time: give e.g. 2026-11-27T09:00:00Z or 2026-11-27"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def parse_since(text: str, now: dt.datetime) -> dt.datetime:
    """An ISO 8601 instant, or a duration counted back from `now`."""
    try:
        return parse_instant(text)
    except ConfigurationError:
        pass
    try:
        return now - parse_duration(text)
    except ConfigurationError:
        raise ConfigurationError(
            f"{text!r} is neither an ISO 8601 time (2026-11-27T09:00Z) nor a duration (P1D, 2h)"
        ) from None


def epoch_ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


@dataclass(frozen=True)
class PartitionRange:
    """Offsets `start <= offset < end` of one partition, with why they differ from the ask."""

    partition: int
    start: int
    end: int
    low: int
    high: int
    notes: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        """Records in the range (transaction markers, if any, make it an upper bound)."""
        return max(0, self.end - self.start)


def clamp_range(partition: int, low: int, high: int, start: int, end: int | None) -> PartitionRange:
    """The range from `start` to `end` (None: the end now) kept within `low`..`high`, each
    correction said in a note."""
    notes = []
    if start < low:
        notes.append(f"offset {start} is gone (first kept: {low}): starting at {low}")
        start = low
    elif start > high:
        notes.append(f"offset {start} is past the end ({high}): nothing to replay")
        start = high
    if end is None:
        end = high
    elif end > high:
        notes.append(f"end offset {end} is past the end ({high}): stopping at {high}")
        end = high
    if end < start:
        notes.append(f"end offset {end} is before the start ({start}): nothing to replay")
        end = start
    return PartitionRange(partition, start, end, low, high, tuple(notes))
