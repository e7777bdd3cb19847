"""A reference club-management platform served over real HTTP for demo, tests and benchmarks."""

from adapters.reference.faults import FaultPlan, FaultSpec
from adapters.reference.server import (
    MODE_ABSENT_ROUTES,
    ReceiverMode,
    ReferenceAuth,
    ReferenceConfig,
    ReferenceReceiver,
    ThreadedReceiver,
    run_in_thread,
)

__all__ = [
    "MODE_ABSENT_ROUTES",
    "FaultPlan",
    "FaultSpec",
    "ReceiverMode",
    "ReferenceAuth",
    "ReferenceConfig",
    "ReferenceReceiver",
    "ThreadedReceiver",
    "run_in_thread",
]
