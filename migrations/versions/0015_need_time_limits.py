"""lists: a 复杂 need's 办理方案 and its completion date, given at 接单 (issue 22)

Revision ID: 0015_need_time_limits
Revises: 0013_account_batches
Create Date: 2026-12-06 19:30:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0015_need_time_limits'
down_revision = '0013_account_batches'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('need', schema=None) as batch_op:
        batch_op.add_column(sa.Column('plan', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('plan_due', sa.Date(), nullable=True))


def downgrade():
    with op.batch_alter_table('need', schema=None) as batch_op:
        batch_op.drop_column('plan_due')
        batch_op.drop_column('plan')
