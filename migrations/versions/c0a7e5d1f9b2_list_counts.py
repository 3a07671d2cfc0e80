"""list counts: the counter journal and the triggers that keep it, for exact list counts

Revision ID: c0a7e5d1f9b2
Revises: 3c5e9a1f7b20
Create Date: 2026-11-22 07:30:00

Triggers are dropped by a SQLite batch_alter_table of their table (it copies the table):
a later migration that batch-alters sync_tasks or audit_log must re-run `ddl` for it.
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal import list_counts
from portal.models.counts import registry

revision = 'c0a7e5d1f9b2'
down_revision = '3c5e9a1f7b20'
branch_labels = None
depends_on = None

TABLES = ("sync_tasks", "audit_log")


def upgrade():
    op.create_table(
        'list_counts',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('list', sa.String(length=40), nullable=False),
        sa.Column('cuboid', sa.String(length=1), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('bucket', sa.String(length=10), nullable=False),
        sa.Column('status', sa.String(length=40), nullable=False),
        sa.Column('k1', sa.String(length=40), nullable=False),
        sa.Column('k2', sa.String(length=40), nullable=False),
        sa.Column('n', sa.BigInteger(), nullable=False),
        sa.Column('folded', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_list_counts_cell', 'list_counts',
                    ['list', 'cuboid', 'org_id', 'bucket', 'k1', 'k2', 'status', 'n'])
    op.create_index('ix_list_counts_unfolded', 'list_counts', ['folded'],
                    sqlite_where=sa.text('folded = 0'), postgresql_where=sa.text('NOT folded'))
    bind = op.get_bind()
    for table in TABLES:
        for statement in list_counts.ddl(registry[table], bind.dialect.name)[0]:
            op.execute(statement)
    session = Session(bind=bind)
    list_counts.rebuild(session, list(TABLES))
    session.flush()

    # The maintenance plan (调度计划): counts folded, planner statistics kept fresh.
    plans = sa.table("schedule_plans", sa.column("code"), sa.column("description"), sa.column("job"),
                     sa.column("cron"), sa.column("interval_seconds"), sa.column("enabled"),
                     sa.column("last_result"), sa.column("updated_at"))
    op.bulk_insert(plans, [
        dict(code="sim_DatabaseMaintenance", description="数据库维护：合并列表计数、更新查询统计信息",
             job="db.maintenance", cron="", interval_seconds=300, enabled=True, last_result="",
             updated_at=datetime.now(timezone.utc).replace(tzinfo=None)),
    ])


def downgrade():
    op.execute("DELETE FROM schedule_plans WHERE code = 'sim_DatabaseMaintenance'")
    bind = op.get_bind()
    for table in TABLES:
        for statement in list_counts.ddl(registry[table], bind.dialect.name)[1]:
            op.execute(statement)
    op.drop_index('ix_list_counts_unfolded', table_name='list_counts')
    op.drop_index('ix_list_counts_cell', table_name='list_counts')
    op.drop_table('list_counts')
