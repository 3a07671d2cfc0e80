"""uploads: an imported file's bytes, kept in the database for the import job

Revision ID: 3c5e9a1f7b20
Revises: 066b5d42076e
Create Date: 2026-11-22 05:40:00

In scaled mode the worker that runs an import is on another machine than the web
process that received the file, so the upload lives in the database, not in a temp file.
"""
from alembic import op
import sqlalchemy as sa


revision = '3c5e9a1f7b20'
down_revision = 'b3f1c9d2e4a7'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('uploads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_uploads_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_uploads'))
    )
    with op.batch_alter_table('uploads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_uploads_expires_at'), ['expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('uploads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_uploads_expires_at'))
    op.drop_table('uploads')
