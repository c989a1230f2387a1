"""Blue/green deployment of the trading runtime: slots, shadow analysis, lease and fencing, rollback.

Front-ends call the service layer, ``commander.operations`` (``serve``, ``deploy``, ``rollback``,
``settled``), which drives ``commander.engine.Commander``; ``commander.status.status`` reads
the state without a running commander. Imported from here (no settings needed)::

    from commander import Lease, FencedBroker, client_order_id, DeploymentHistory, Deployment

    lease = Lease(data_dir)                      # the order-writer lease, epoch in SQLite
    state = lease.acquire("blue", expect_epoch=None)
    broker = FencedBroker(paper_broker, lease, "blue", state.epoch)   # stale epochs never reach it
    history = DeploymentHistory(data_dir / "deployments.sqlite")

(``commander.engine`` and ``commander.operations`` are not imported here: they need
``sorte.config``, which itself imports ``commander.analysis``.)
"""

from commander.deployment import (
    AnalysisResult,
    CheckResult,
    CommitRejected,
    Deployment,
    DeploymentError,
    DeploymentEvent,
    IllegalTransition,
    UnknownDeployment,
)
from commander.fencing import FencedBroker, StaleEpoch, client_order_id
from commander.history import DeploymentHistory
from commander.lease import Lease, LeaseConflict, LeaseError, LeaseState

__all__ = [
    "AnalysisResult",
    "CheckResult",
    "CommitRejected",
    "Deployment",
    "DeploymentError",
    "DeploymentEvent",
    "DeploymentHistory",
    "FencedBroker",
    "IllegalTransition",
    "Lease",
    "LeaseConflict",
    "LeaseError",
    "LeaseState",
    "StaleEpoch",
    "UnknownDeployment",
    "client_order_id",
]
