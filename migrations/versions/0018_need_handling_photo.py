"""lists: the photo taken on the spot with a need's move on the phone page (issue 22)

Revision ID: 0018_need_handling_photo
Revises: 0017_public_intake
Create Date: 2026-12-06 20:05:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0018_need_handling_photo'
down_revision = '0017_public_intake'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('need', schema=None) as batch_op:
        batch_op.add_column(sa.Column('handling_photo_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_need_handling_photo_id_stored_file', 'stored_file',
                                    ['handling_photo_id'], ['id'])


def downgrade():
    with op.batch_alter_table('need', schema=None) as batch_op:
        batch_op.drop_constraint('fk_need_handling_photo_id_stored_file', type_='foreignkey')
        batch_op.drop_column('handling_photo_id')
