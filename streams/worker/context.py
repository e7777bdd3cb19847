"""What the planner and the executor share: codecs, tenants, receiver clients, links, output."""

from __future__ import annotations

from dataclasses import dataclass

from streams.avro.codec import Codecs
from streams.tenancy.directory import TenantDirectory
from streams.tenancy.receivers import ReceiverPool
from streams.worker.links import LinkStore
from streams.worker.metrics import Metrics
from streams.worker.publishing import Publisher


@dataclass(frozen=True)
class WorkerContext:
    """The worker's shared parts, built once by the app and handed to each stage."""

    codecs: Codecs
    tenants: TenantDirectory
    receivers: ReceiverPool
    links: LinkStore
    publish: Publisher
    metrics: Metrics
