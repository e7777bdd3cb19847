"""Random IDs for commands, outcomes and dead letters, cheaper than `uuid.uuid4()`."""

from __future__ import annotations

import os
import random

#: Mersenne Twister seeded from os.urandom (2,500 bytes) in each process: its IDs need only be
#: unique, across workers and restarts, not secret. `uuid4` reads os.urandom per ID, a system
#: call per outcome on the worker's main thread.
_random = random.Random()
os.register_at_fork(after_in_child=_random.seed)

_VARIANT_MASK = ~(0xC000 << 48)
_VARIANT = 0x8000 << 48
_VERSION_MASK = ~(0xF000 << 64)
_VERSION = 0x4000 << 64


def new_id() -> str:
    """A random version-4 UUID, as `str(uuid.uuid4())` writes it."""
    n = (_random.getrandbits(128) & _VARIANT_MASK & _VERSION_MASK) | _VARIANT | _VERSION
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
