"""download tasks: a partial index for the 有处理失败 flag filter

Revision ID: f3c8d1e6a2b9
Revises: e7b3f2a9c4d8
Create Date: 2026-11-22 11:15:00

The rule (portal/models/sync.py): a flag filter walks only the rows it selects.
"""
from alembic import op
import sqlalchemy as sa

revision = 'f3c8d1e6a2b9'
down_revision = 'e7b3f2a9c4d8'
branch_labels = None
depends_on = None

CONDITION = "success_count < invoice_count"


def upgrade():
    op.create_index('ix_sync_tasks_org_has_failures_by_created', 'sync_tasks', ['org_id', 'created_at', 'id', 'status'],
                    sqlite_where=sa.text(CONDITION), postgresql_where=sa.text(CONDITION))


def downgrade():
    op.drop_index('ix_sync_tasks_org_has_failures_by_created', table_name='sync_tasks')
