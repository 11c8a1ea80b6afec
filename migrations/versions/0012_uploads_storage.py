"""uploads in the shared storage (issue 21)

An agreement's scan and a meeting's attachments name their file in `stored_file`
(app/storage.py) instead of a path under UPLOAD_FOLDER; the files already there are moved in by
`flask gongjian init` (app.storage.move_local_uploads), which keeps the old names until then.

Revision ID: 0012_uploads
Revises: 0011_jobs
Create Date: 2026-12-06 16:30:00

"""
import sqlalchemy as sa
from alembic import op


revision = '0012_uploads'
down_revision = '0011_jobs'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('agreement', schema=None) as batch_op:
        batch_op.add_column(sa.Column('file_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_agreement_file_id_stored_file'), 'stored_file',
                                    ['file_id'], ['id'], ondelete='SET NULL')
    with op.batch_alter_table('meeting_attachment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('file_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_meeting_attachment_file_id_stored_file'),
                                    'stored_file', ['file_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('meeting_attachment', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_meeting_attachment_file_id_stored_file'),
                                 type_='foreignkey')
        batch_op.drop_column('file_id')
    with op.batch_alter_table('agreement', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_agreement_file_id_stored_file'), type_='foreignkey')
        batch_op.drop_column('file_id')
