"""workflow core: apply attempts, request claims, outbox, org login state, append-only audit

Revision ID: a7c0c0re0001
Revises: 87e7d47cdc55
Create Date: 2026-11-22 05:30:00

"""
from alembic import op
import sqlalchemy as sa

from portal.models.audit import APPEND_ONLY_DDL

revision = 'a7c0c0re0001'
down_revision = '87e7d47cdc55'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sync_tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason_code', sa.String(length=40), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('next_check_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('checks', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index('ix_sync_tasks_status_check', ['status', 'next_check_at', 'id'], unique=False)
        batch_op.create_index('ix_sync_tasks_reason_created', ['reason_code', 'created_at', 'id'], unique=False)
        batch_op.drop_index('ix_sync_tasks_same_request')  # the 3-minute rule reads sync_request_claims now
    op.execute("UPDATE sync_tasks SET next_check_at = updated_at WHERE status = 'processing'")

    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel_login_expired_at', sa.DateTime(), nullable=True))

    op.create_table(
        'sync_task_attempts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('request_id', sa.String(length=60), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('actor', sa.String(length=80), nullable=False),
        sa.Column('reason', sa.String(length=40), nullable=False),
        sa.Column('channel_task_id', sa.String(length=80), nullable=False),
        sa.Column('message', sa.String(length=500), nullable=False),
        sa.Column('sends', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['task_id'], ['sync_tasks.id'], name=op.f('fk_sync_task_attempts_task_id_sync_tasks'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_task_attempts')),
        sa.UniqueConstraint('request_id', name=op.f('uq_sync_task_attempts_request_id')),
        sa.UniqueConstraint('task_id', 'seq', name=op.f('uq_sync_task_attempts_task_id')),
    )
    op.create_index(op.f('ix_sync_task_attempts_task_id'), 'sync_task_attempts', ['task_id'], unique=False)

    op.create_table(
        'sync_request_claims',
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('download_type', sa.String(length=20), nullable=False),
        sa.Column('start_date', sa.Date(), nullable=False),
        sa.Column('end_date', sa.Date(), nullable=False),
        sa.Column('requested_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('org_id', 'download_type', 'start_date', 'end_date', name=op.f('pk_sync_request_claims')),
    )

    op.create_table(
        'outbox',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('key', sa.String(length=120), nullable=False),
        sa.Column('subject', sa.String(length=120), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=True),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
        sa.Column('last_error', sa.String(length=500), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('delivered_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
        sa.UniqueConstraint('key', name=op.f('uq_outbox_key')),
    )
    op.create_index('ix_outbox_status_next', 'outbox', ['status', 'next_attempt_at', 'id'], unique=False)
    op.create_index(op.f('ix_outbox_org_id'), 'outbox', ['org_id'], unique=False)

    op.execute(sa.text("UPDATE schedule_plans SET interval_seconds = 60, "
                       "description = '下载任务巡检：申请、查询、通道作废（每分钟）' "
                       "WHERE code = 'sim_SyncTaskWatchdog'"))

    for statement in APPEND_ONLY_DDL[op.get_bind().dialect.name][0]:
        op.execute(statement)


def downgrade():
    for statement in APPEND_ONLY_DDL[op.get_bind().dialect.name][1]:
        op.execute(statement)
    op.drop_index('ix_outbox_status_next', table_name='outbox')
    op.drop_index(op.f('ix_outbox_org_id'), table_name='outbox')
    op.drop_table('outbox')
    op.drop_table('sync_request_claims')
    op.drop_index(op.f('ix_sync_task_attempts_task_id'), table_name='sync_task_attempts')
    op.drop_table('sync_task_attempts')
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.drop_column('channel_login_expired_at')
    with op.batch_alter_table('sync_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_sync_tasks_same_request',
                              ['org_id', 'download_type', 'start_date', 'end_date', 'requested_at'], unique=False)
        batch_op.drop_index('ix_sync_tasks_reason_created')
        batch_op.drop_index('ix_sync_tasks_status_check')
        batch_op.drop_column('checks')
        batch_op.drop_column('next_check_at')
        batch_op.drop_column('reason_code')
