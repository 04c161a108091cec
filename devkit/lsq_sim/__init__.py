"""A faithful HTTP simulator of LeadSquared's async and sync lead/activity APIs (``lsq-sim``):
auth, body validation, per-account rate limit, an async work queue applied to an in-memory lead
store with the sync semantics, the Status and Metrics APIs, fault injection and ``/_sim``
inspection. Run it in-process (``Simulator``) or as a process (``SimProcess``); inspect and
control it with ``SimClient``."""

from lsq_sim.answers import AnswerClass
from lsq_sim.app import build_app
from lsq_sim.client import SimClient, SimClientError
from lsq_sim.config import (
    Account,
    DailyQuota,
    FaultRule,
    Faults,
    Outage,
    Processing,
    RateLimit,
    SimConfig,
    StoreRules,
    load_config,
)
from lsq_sim.runner import SimProcess, Simulator
from lsq_sim.views import (
    AccountStats,
    ActivityView,
    LeadView,
    LoggedRequest,
    QueueStats,
    Stats,
    StoreView,
)

__all__ = [
    "Account",
    "AccountStats",
    "ActivityView",
    "AnswerClass",
    "DailyQuota",
    "FaultRule",
    "Faults",
    "LeadView",
    "LoggedRequest",
    "Outage",
    "Processing",
    "QueueStats",
    "RateLimit",
    "SimClient",
    "SimClientError",
    "SimConfig",
    "SimProcess",
    "Simulator",
    "Stats",
    "StoreRules",
    "StoreView",
    "build_app",
    "load_config",
]
