"""A reference club-management platform served over real HTTP for demo, tests and benchmarks."""

from adapters.reference.config import (
    MODE_ABSENT_ROUTES,
    ReceiverMode,
    ReferenceAuth,
    ReferenceConfig,
)
from adapters.reference.faults import FaultPlan, FaultSpec
from adapters.reference.server import ReferenceReceiver
from adapters.reference.threaded import ThreadedReceiver, run_in_thread

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
