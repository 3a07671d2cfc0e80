"""list counts: one total cell per organisation and status (the unfiltered page reads it)

Revision ID: a1d5c7e9f3b2
Revises: f3c8d1e6a2b9
Create Date: 2026-12-02 12:40:00

The triggers are re-created from the current declarations (`list_counts.ddl`, which now
writes a ``t`` cell per row) and the counts of the tables are rebuilt from their rows, so
the migration is right whether the earlier migrations already wrote the new cells or not.
"""
from alembic import op
from sqlalchemy.orm import Session

from portal import list_counts
from portal.models.counts import registry

revision = 'a1d5c7e9f3b2'
down_revision = 'f3c8d1e6a2b9'
branch_labels = None
depends_on = None

TABLES = ("sync_tasks", "audit_log")


def _recount():
    bind = op.get_bind()
    for table in TABLES:
        create, drop = list_counts.ddl(registry[table], bind.dialect.name)
        for statement in drop + create:
            op.execute(statement)
    session = Session(bind=bind)
    list_counts.rebuild(session, list(TABLES))
    session.flush()


def upgrade():
    _recount()


def downgrade():
    _recount()  # the extra cells are harmless to the previous code, which never reads them
