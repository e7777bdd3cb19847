"""`connector demo --interleaved`: reference data mixed in among the users, each entity in order."""

from __future__ import annotations

from demo.scenario import build_scenario


def test_interleaving_keeps_every_event_and_each_entitys_order() -> None:
    scenario = build_scenario(11, 800, "100", ["1", "2", "3"])
    mixed = scenario.interleaved()
    assert sorted(id(e) for e in mixed) == sorted(id(e) for e in scenario.events)
    for kind in ("reference", "users"):
        assert [e for e in mixed if e.phase == kind] == scenario.phase(kind)
    phases = [e.phase for e in mixed]
    # Not the phased order: users come before some staff and lead sources.
    assert phases.index("users") < len(phases) - 1 - phases[::-1].index("reference")
    assert scenario.interleaved() == mixed  # seeded
