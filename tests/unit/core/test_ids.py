"""Random IDs: the same text as a version-4 UUID, distinct, and distinct after a fork."""

from __future__ import annotations

import os
import uuid

from streams.core.ids import new_id


def test_an_id_is_a_version_4_uuid_in_its_usual_text() -> None:
    for _ in range(2000):
        text = new_id()
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text


def test_ids_do_not_repeat() -> None:
    ids = [new_id() for _ in range(100_000)]
    assert len(set(ids)) == len(ids)
    # All 122 random bits vary: no hex digit outside the fixed version nibble is constant.
    for position in range(36):
        if position in (8, 13, 14, 18, 23):
            continue
        assert len({text[position] for text in ids[:5000]}) > 1, position


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.write(write, "\n".join(new_id() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    parent = {new_id() for _ in range(100)}
    with os.fdopen(read, "rb") as pipe:
        child = set(pipe.read().decode().split("\n"))
    os.waitpid(pid, 0)
    assert len(child) == 100
    assert not parent & child
