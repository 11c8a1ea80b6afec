"""public intake: a need's or wish's tracking code, a need's photo, repeat reports and the
resident's own rating (issue 22)

Revision ID: 0017_public_intake
Revises: 0016_attendance_levels
Create Date: 2026-12-06 19:20:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0017_public_intake'
down_revision = '0016_attendance_levels'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('need', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tracking_code', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('photo_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('repeat_reports', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('resident_satisfaction', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('resident_comment', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('resident_rated_on', sa.DateTime(), nullable=True))
        batch_op.create_unique_constraint('uq_need_tracking_code', ['tracking_code'])
        batch_op.create_foreign_key('fk_need_photo_id_stored_file', 'stored_file',
                                    ['photo_id'], ['id'])
    with op.batch_alter_table('micro_wish', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tracking_code', sa.String(length=32), nullable=True))
        batch_op.create_unique_constraint('uq_micro_wish_tracking_code', ['tracking_code'])


def downgrade():
    with op.batch_alter_table('micro_wish', schema=None) as batch_op:
        batch_op.drop_constraint('uq_micro_wish_tracking_code', type_='unique')
        batch_op.drop_column('tracking_code')
    with op.batch_alter_table('need', schema=None) as batch_op:
        batch_op.drop_constraint('fk_need_photo_id_stored_file', type_='foreignkey')
        batch_op.drop_constraint('uq_need_tracking_code', type_='unique')
        batch_op.drop_column('resident_rated_on')
        batch_op.drop_column('resident_comment')
        batch_op.drop_column('resident_satisfaction')
        batch_op.drop_column('repeat_reports')
        batch_op.drop_column('photo_id')
        batch_op.drop_column('tracking_code')
