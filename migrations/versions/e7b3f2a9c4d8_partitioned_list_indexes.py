"""download-task indexes led by the organisation (a page walks each organisation's range)

Revision ID: e7b3f2a9c4d8
Revises: d41e9b7c2a10
Create Date: 2026-11-22 11:00:00

The list of download tasks is partitioned by organisation (portal.table_walks): a page is
one short walk per organisation, so every index of the list leads with org_id. The rules
are in portal/models/sync.py (SYNC_TASK_INDEXES) and bench/README.md.
"""
from alembic import op

revision = 'e7b3f2a9c4d8'
down_revision = 'd41e9b7c2a10'
branch_labels = None
depends_on = None

OLD = [
    ('ix_sync_tasks_by_batch_no', ['batch_no', 'created_at', 'id', 'org_id', 'status']),
    ('ix_sync_tasks_by_created_at', ['created_at', 'id', 'org_id', 'status']),
    ('ix_sync_tasks_by_end_date', ['end_date', 'created_at', 'id', 'org_id', 'status']),
    ('ix_sync_tasks_by_invoice_count', ['invoice_count', 'created_at', 'id', 'org_id', 'status']),
    ('ix_sync_tasks_by_start_date', ['start_date', 'created_at', 'id', 'org_id', 'status']),
    ('ix_sync_tasks_by_success_count', ['success_count', 'created_at', 'id', 'org_id', 'status']),
    ('ix_sync_tasks_by_updated_at', ['updated_at', 'created_at', 'id', 'org_id', 'status']),
    ('ix_sync_tasks_channel_by_created', ['channel', 'created_at', 'id', 'org_id', 'status']),
    ('ix_sync_tasks_download_type_by_created', ['download_type', 'created_at', 'id', 'org_id', 'status']),
    ('ix_sync_tasks_org_by_created', ['org_id', 'created_at', 'id', 'status']),
    ('ix_sync_tasks_org_status_by_created', ['org_id', 'status', 'created_at', 'id']),
    ('ix_sync_tasks_reason_code_by_created', ['reason_code', 'created_at', 'id', 'org_id', 'status']),
    ('ix_sync_tasks_status_by_batch_no', ['status', 'batch_no', 'created_at', 'id', 'org_id']),
    ('ix_sync_tasks_status_by_created_at', ['status', 'created_at', 'id', 'org_id']),
    ('ix_sync_tasks_status_by_end_date', ['status', 'end_date', 'created_at', 'id', 'org_id']),
    ('ix_sync_tasks_status_by_invoice_count', ['status', 'invoice_count', 'created_at', 'id', 'org_id']),
    ('ix_sync_tasks_status_by_start_date', ['status', 'start_date', 'created_at', 'id', 'org_id']),
    ('ix_sync_tasks_status_by_success_count', ['status', 'success_count', 'created_at', 'id', 'org_id']),
    ('ix_sync_tasks_status_by_updated_at', ['status', 'updated_at', 'created_at', 'id', 'org_id']),
    ('ix_sync_tasks_sync_type_by_created', ['sync_type', 'created_at', 'id', 'org_id', 'status']),
]
NEW = [
    ('ix_sync_tasks_org_by_batch_no', ['org_id', 'batch_no', 'created_at', 'id', 'status']),
    ('ix_sync_tasks_org_status_by_batch_no', ['org_id', 'status', 'batch_no', 'created_at', 'id']),
    ('ix_sync_tasks_org_by_start_date', ['org_id', 'start_date', 'created_at', 'id', 'status']),
    ('ix_sync_tasks_org_status_by_start_date', ['org_id', 'status', 'start_date', 'created_at', 'id']),
    ('ix_sync_tasks_org_by_end_date', ['org_id', 'end_date', 'created_at', 'id', 'status']),
    ('ix_sync_tasks_org_status_by_end_date', ['org_id', 'status', 'end_date', 'created_at', 'id']),
    ('ix_sync_tasks_org_by_success_count', ['org_id', 'success_count', 'created_at', 'id', 'status']),
    ('ix_sync_tasks_org_status_by_success_count', ['org_id', 'status', 'success_count', 'created_at', 'id']),
    ('ix_sync_tasks_org_by_invoice_count', ['org_id', 'invoice_count', 'created_at', 'id', 'status']),
    ('ix_sync_tasks_org_status_by_invoice_count', ['org_id', 'status', 'invoice_count', 'created_at', 'id']),
    ('ix_sync_tasks_org_by_created_at', ['org_id', 'created_at', 'id', 'status']),
    ('ix_sync_tasks_org_status_by_created_at', ['org_id', 'status', 'created_at', 'id']),
    ('ix_sync_tasks_org_by_updated_at', ['org_id', 'updated_at', 'created_at', 'id', 'status']),
    ('ix_sync_tasks_org_status_by_updated_at', ['org_id', 'status', 'updated_at', 'created_at', 'id']),
    ('ix_sync_tasks_org_download_type_by_created', ['org_id', 'download_type', 'created_at', 'id', 'status']),
    ('ix_sync_tasks_org_sync_type_by_created', ['org_id', 'sync_type', 'created_at', 'id', 'status']),
    ('ix_sync_tasks_org_channel_by_created', ['org_id', 'channel', 'created_at', 'id', 'status']),
    ('ix_sync_tasks_org_reason_code_by_created', ['org_id', 'reason_code', 'created_at', 'id', 'status']),
    ('ix_sync_tasks_org_error_by_created', ['org_id', 'error', 'created_at', 'id', 'status']),
    ('ix_sync_tasks_error_texts', ['error']),
]


def upgrade():
    for name, _cols in OLD:
        op.drop_index(name, table_name='sync_tasks')
    for name, cols in NEW:
        op.create_index(name, 'sync_tasks', cols)


def downgrade():
    for name, _cols in NEW:
        op.drop_index(name, table_name='sync_tasks')
    for name, cols in OLD:
        op.create_index(name, 'sync_tasks', cols)
