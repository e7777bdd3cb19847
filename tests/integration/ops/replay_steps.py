"""Steps the replay and dead-letter tests share: the command line, and waiting for a replay."""

from __future__ import annotations

import json
from typing import Any

from streams.core.model import FINAL_STATUSES
from tests.integration.harness import Pipeline, connector, user_event, wait_for


def run(p: Pipeline, *args: str) -> dict[str, Any]:
    """Run `connector ARGS` against the pipeline; it must succeed; its last line is JSON."""
    done = connector(p.env(), *args)
    assert done.returncode == 0, f"connector {' '.join(args)}: {done.stdout}\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def finals_of(p: Pipeline, replay_id: str) -> list[dict[str, Any]]:
    return [
        o for o in p.outcomes() if o["replay_id"] == replay_id and o["status"] in FINAL_STATUSES
    ]


def replay_outcomes(p: Pipeline, replay_id: str, count: int) -> list[dict[str, Any]]:
    """The final outcomes of a replay, once there are `count` of them."""
    return wait_for(
        f"{count} outcomes of {replay_id}",
        lambda: rows if len(rows := finals_of(p, replay_id)) >= count else None,
        timeout=60,
    )


def dead_letters_of(p: Pipeline, client_id: str, count: int) -> list[dict[str, Any]]:
    """The client's dead letters, once there are `count` of them."""
    return wait_for(
        f"{count} dead letters of {client_id}",
        lambda: (
            rows
            if len(rows := [d for d in p.dead_letters() if d["client_id"] == client_id]) >= count
            else None
        ),
    )


def turn_up_and_wait(p: Pipeline, client_id: str) -> None:
    """Turn the client up and wait until the worker plans its changes (a live one lands)."""
    p.add_receiver(client_id)
    p.send("UserChanged", user_event(client_id, "probe", 1))
    p.wait_outcome(client_id, "probe", 1)
