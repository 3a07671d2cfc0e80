"""tracked jobs: job_run_items, job_files (+chunks), heartbeat/subject/back_url/args, reaper plan

Revision ID: 066b5d42076e
Revises: 87e7d47cdc55
Create Date: 2026-11-22 05:00:00

Per-row outcomes move from the JSON column ``job_runs.results`` into ``job_run_items``;
result files move from a worker-local path (``job_runs.result_file``) into the database.
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


revision = '066b5d42076e'
down_revision = 'e06cf5c50dda'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subject', sa.String(length=300), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('back_url', sa.String(length=1000), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('args', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('retry_of_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('started_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(), nullable=True))
        batch_op.drop_column('results')
        batch_op.drop_column('result_file')
        batch_op.create_index(batch_op.f('ix_job_runs_status'), ['status'], unique=False)

    op.create_table('job_run_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('ref', sa.String(length=60), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['job_runs.id'], name=op.f('fk_job_run_items_job_id_job_runs'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_run_items'))
    )
    with op.batch_alter_table('job_run_items', schema=None) as batch_op:
        batch_op.create_index('ix_job_run_items_job_outcome', ['job_id', 'outcome'], unique=False)

    op.create_table('job_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['job_runs.id'], name=op.f('fk_job_files_job_id_job_runs'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_files')),
    sa.UniqueConstraint('job_id', name=op.f('uq_job_files_job_id'))
    )
    with op.batch_alter_table('job_files', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_files_expires_at'), ['expires_at'], unique=False)

    op.create_table('job_file_chunks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('file_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['file_id'], ['job_files.id'], name=op.f('fk_job_file_chunks_file_id_job_files'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_file_chunks')),
    sa.UniqueConstraint('file_id', 'seq', name='uq_job_file_chunks_file_seq')
    )

    # The reaper plan (调度计划): dead jobs → failed, expired result files removed.
    plans = sa.table("schedule_plans", sa.column("code"), sa.column("description"), sa.column("job"),
                     sa.column("cron"), sa.column("interval_seconds"), sa.column("enabled"),
                     sa.column("last_result"), sa.column("updated_at"))
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    op.bulk_insert(plans, [
        dict(code="sim_TrackedJobReaper", description="后台任务中断检测与过期文件清理", job="jobs.reap",
             cron="", interval_seconds=60, enabled=True, last_result="", updated_at=now),
    ])


def downgrade():
    op.execute("DELETE FROM schedule_plans WHERE code = 'sim_TrackedJobReaper'")
    op.drop_table('job_file_chunks')
    with op.batch_alter_table('job_files', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_files_expires_at'))
    op.drop_table('job_files')
    with op.batch_alter_table('job_run_items', schema=None) as batch_op:
        batch_op.drop_index('ix_job_run_items_job_outcome')
    op.drop_table('job_run_items')
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_runs_status'))
        batch_op.add_column(sa.Column('result_file', sa.String(length=300), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('results', sa.JSON(), nullable=True))
        batch_op.drop_column('heartbeat_at')
        batch_op.drop_column('started_at')
        batch_op.drop_column('retry_of_id')
        batch_op.drop_column('args')
        batch_op.drop_column('back_url')
        batch_op.drop_column('subject')
