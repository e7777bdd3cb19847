"""Consumer settings the worker's recovery depends on."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.kafka.fetching import BatchingConsumer, BatchingTransport
from streams.settings import REBALANCE_TIMEOUT_S, PipelineSettings, Settings
from streams.worker.app import METADATA_MAX_AGE, Pipeline


def test_a_group_left_without_partitions_after_a_broker_restart_mends_within_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The mend is a rebalance triggered by a metadata refresh: it must not wait 5 minutes.
    monkeypatch.setenv("CONNECTOR_DATA_DIR", str(tmp_path))
    pipeline = Pipeline(Settings(), "127.0.0.1:1")
    assert pipeline.app.conf.consumer_metadata_max_age_ms == METADATA_MAX_AGE * 1000 <= 10_000


def test_the_worker_consumes_through_the_transport_that_batches_fetches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNECTOR_DATA_DIR", str(tmp_path))
    transport = Pipeline(Settings(), "127.0.0.1:1").app.transport
    assert isinstance(transport, BatchingTransport)
    assert transport.Consumer is BatchingConsumer


def test_the_receiver_timeout_is_bounded_by_the_groups_own_rebalance_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A revocation waits for a create under way, up to the receiver timeout: the bound the
    # setting is checked against must be the one the group runs with.
    monkeypatch.setenv("CONNECTOR_DATA_DIR", str(tmp_path))
    pipeline = Pipeline(Settings(), "127.0.0.1:1")
    bound = PipelineSettings.model_fields["receiver_timeout"].metadata
    assert pipeline.app.conf.broker_rebalance_timeout == REBALANCE_TIMEOUT_S
    assert any(getattr(m, "lt", None) == REBALANCE_TIMEOUT_S for m in bound)
