"""`connector lag --topic` takes a design topic by its base name, as `replay --topic` does."""

from __future__ import annotations

import pytest

from streams.cli.lag import _design_name
from streams.settings import Settings


def test_a_design_topic_base_name_gets_the_prefix_and_other_names_stay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONNECTOR_TOPIC_PREFIX", "acme.")
    settings = Settings()
    assert _design_name(settings, "connector.replay.v1") == "acme.connector.replay.v1"
    assert _design_name(settings, "acme.connector.replay.v1") == "acme.connector.replay.v1"
    assert _design_name(settings, "someone.elses.topic") == "someone.elses.topic"
