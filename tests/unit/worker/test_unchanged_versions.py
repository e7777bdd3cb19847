"""A version the receiver holds already becomes the applied one: an older version planned
again afterwards (a re-plan from a snapshot that had not seen it) is stale.

Found by the soak: v6 of a user was skipped as unchanged (same values as v5), then a
re-plan of v5 (its staff owner had just been linked) overwrote the member with v5's owner.
"""

from __future__ import annotations

from pathlib import Path

from streams.core.decisions import SkipReason, skip_user_command
from streams.core.model import Status
from streams.worker.links import LinkStore
from tests.unit.worker.test_own_writes import outcome


def test_an_unchanged_newer_version_makes_an_older_re_plan_stale(tmp_path: Path) -> None:
    store = LinkStore(tmp_path)
    store.apply(outcome(5, Status.LINKED, "M1") | {"fingerprint": "same"}, (2, 10))
    skipped = outcome(6, Status.SKIPPED) | {"fingerprint": "same", "message": SkipReason.UNCHANGED}
    store.apply(skipped, (2, 11))
    link = store.user("100", "5001")
    assert link is not None and (link.version, link.receiver_id) == (6, "M1")
    re_plan = {"version": 5, "fingerprint": "with-owner"}
    assert skip_user_command(re_plan, link) == SkipReason.STALE
    # v6 planned again with changed links still runs; and a stale skip moves nothing.
    assert skip_user_command({"version": 6, "fingerprint": "with-owner"}, link) is None
    stale = outcome(7, Status.SKIPPED) | {"fingerprint": "same", "message": SkipReason.STALE}
    store.apply(stale, (2, 12))
    link = store.user("100", "5001")
    assert link is not None and link.version == 6
    store.close()
