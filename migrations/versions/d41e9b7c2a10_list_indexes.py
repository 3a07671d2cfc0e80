"""list indexes derived from what the lists offer (sorts × tabs, equality filters, a clerk's scope)

Revision ID: d41e9b7c2a10
Revises: c0a7e5d1f9b2
Create Date: 2026-11-22 08:00:00

The rules are in portal/models/sync.py (SYNC_TASK_INDEXES) and bench/README.md; the
error-text indexes go (a contains filter cannot use them).
"""
from alembic import op

revision = 'd41e9b7c2a10'
down_revision = 'c0a7e5d1f9b2'
branch_labels = None
depends_on = None

OLD = [
    ('sync_tasks', 'ix_sync_tasks_created', ['created_at', 'id']),
    ('sync_tasks', 'ix_sync_tasks_updated', ['updated_at', 'id']),
    ('sync_tasks', 'ix_sync_tasks_start', ['start_date', 'id']),
    ('sync_tasks', 'ix_sync_tasks_end', ['end_date', 'id']),
    ('sync_tasks', 'ix_sync_tasks_success_count', ['success_count', 'id']),
    ('sync_tasks', 'ix_sync_tasks_invoice_count', ['invoice_count', 'id']),
    ('sync_tasks', 'ix_sync_tasks_status_created', ['status', 'created_at', 'id']),
    ('sync_tasks', 'ix_sync_tasks_org_created', ['org_id', 'created_at', 'id']),
    ('sync_tasks', 'ix_sync_tasks_type_created', ['download_type', 'created_at', 'id']),
    ('sync_tasks', 'ix_sync_tasks_sync_type_created', ['sync_type', 'created_at', 'id']),
    ('sync_tasks', 'ix_sync_tasks_channel_created', ['channel', 'created_at', 'id']),
    ('sync_tasks', 'ix_sync_tasks_error', ['error']),
    ('sync_tasks', 'ix_sync_tasks_org_status_created', ['org_id', 'status', 'created_at', 'id']),
    ('sync_tasks', 'ix_sync_tasks_type_status_created', ['download_type', 'status', 'created_at', 'id']),
    ('sync_tasks', 'ix_sync_tasks_org_type_status', ['org_id', 'download_type', 'status', 'created_at', 'id']),
    ('sync_tasks', 'ix_sync_tasks_sync_type_status', ['sync_type', 'status', 'created_at', 'id']),
    ('sync_tasks', 'ix_sync_tasks_channel_status', ['channel', 'status', 'created_at', 'id']),
    ('sync_tasks', 'ix_sync_tasks_reason_created', ['reason_code', 'created_at', 'id']),
    ('audit_log', 'ix_audit_log_actor_at', ['actor', 'at']),
    ('audit_log', 'ix_audit_log_actor_action_at', ['actor', 'action', 'at']),
    ('audit_log', 'ix_audit_log_action_at', ['action', 'at']),
    ('audit_log', 'ix_audit_log_org_at', ['org_id', 'at']),
]
NEW = [
    ('sync_tasks', 'ix_sync_tasks_by_batch_no', ['batch_no', 'created_at', 'id', 'org_id', 'status']),
    ('sync_tasks', 'ix_sync_tasks_by_created_at', ['created_at', 'id', 'org_id', 'status']),
    ('sync_tasks', 'ix_sync_tasks_by_end_date', ['end_date', 'created_at', 'id', 'org_id', 'status']),
    ('sync_tasks', 'ix_sync_tasks_by_invoice_count', ['invoice_count', 'created_at', 'id', 'org_id', 'status']),
    ('sync_tasks', 'ix_sync_tasks_by_start_date', ['start_date', 'created_at', 'id', 'org_id', 'status']),
    ('sync_tasks', 'ix_sync_tasks_by_success_count', ['success_count', 'created_at', 'id', 'org_id', 'status']),
    ('sync_tasks', 'ix_sync_tasks_by_updated_at', ['updated_at', 'created_at', 'id', 'org_id', 'status']),
    ('sync_tasks', 'ix_sync_tasks_channel_by_created', ['channel', 'created_at', 'id', 'org_id', 'status']),
    ('sync_tasks', 'ix_sync_tasks_download_type_by_created', ['download_type', 'created_at', 'id', 'org_id', 'status']),
    ('sync_tasks', 'ix_sync_tasks_org_by_created', ['org_id', 'created_at', 'id', 'status']),
    ('sync_tasks', 'ix_sync_tasks_org_status_by_created', ['org_id', 'status', 'created_at', 'id']),
    ('sync_tasks', 'ix_sync_tasks_reason_code_by_created', ['reason_code', 'created_at', 'id', 'org_id', 'status']),
    ('sync_tasks', 'ix_sync_tasks_status_by_batch_no', ['status', 'batch_no', 'created_at', 'id', 'org_id']),
    ('sync_tasks', 'ix_sync_tasks_status_by_created_at', ['status', 'created_at', 'id', 'org_id']),
    ('sync_tasks', 'ix_sync_tasks_status_by_end_date', ['status', 'end_date', 'created_at', 'id', 'org_id']),
    ('sync_tasks', 'ix_sync_tasks_status_by_invoice_count', ['status', 'invoice_count', 'created_at', 'id', 'org_id']),
    ('sync_tasks', 'ix_sync_tasks_status_by_start_date', ['status', 'start_date', 'created_at', 'id', 'org_id']),
    ('sync_tasks', 'ix_sync_tasks_status_by_success_count', ['status', 'success_count', 'created_at', 'id', 'org_id']),
    ('sync_tasks', 'ix_sync_tasks_status_by_updated_at', ['status', 'updated_at', 'created_at', 'id', 'org_id']),
    ('sync_tasks', 'ix_sync_tasks_sync_type_by_created', ['sync_type', 'created_at', 'id', 'org_id', 'status']),
    ('audit_log', 'ix_audit_log_action_by_at', ['action', 'at', 'id']),
    ('audit_log', 'ix_audit_log_actor_by_at', ['actor', 'at', 'id']),
    ('audit_log', 'ix_audit_log_object_id_by_at', ['object_id', 'at', 'id']),
    ('audit_log', 'ix_audit_log_object_type_by_at', ['object_type', 'at', 'id']),
    ('audit_log', 'ix_audit_log_org_id_by_at', ['org_id', 'at', 'id']),
]


def upgrade():
    op.execute("DROP INDEX IF EXISTS ix_sync_tasks_error_pattern")
    for table, name, _cols in OLD:
        op.drop_index(name, table_name=table)
    for table, name, cols in NEW:
        op.create_index(name, table, cols)


def downgrade():
    for table, name, _cols in NEW:
        op.drop_index(name, table_name=table)
    for table, name, cols in OLD:
        op.create_index(name, table, cols)
    op.create_index("ix_sync_tasks_error_pattern", "sync_tasks", ["error"],
                    postgresql_ops={"error": "varchar_pattern_ops"})
