"""SQLAlchemy models, one module per domain area."""
from portal.models.organization import Organization, TaxpayerType  # noqa: F401
from portal.models.user import User, Grant, Role  # noqa: F401
from portal.models.system import SystemParameter  # noqa: F401
from portal.models.audit import AuditLog  # noqa: F401
from portal.models.job import JobRun  # noqa: F401
from portal.models.sync import (SyncTask, SyncTaskInvoice, PoolInvoice, SchedulePlan,  # noqa: F401
                                SyncStatus, SyncType, SyncTaskAttempt, SyncRequestClaim)
from portal.models.outbox import OutboxMessage  # noqa: F401
from portal.models.preference import TablePreference  # noqa: F401
from portal.models.session import UserSession  # noqa: F401
from portal.models.counts import ListCount  # noqa: F401
