"""accounts: a user's 手机号 (the account import's column, the user admin's field; masked as
every other phone) (issue 20)

Revision ID: 0022_account_phone
Revises: 0021_need_resources
Create Date: 2026-12-06 22:30:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0022_account_phone'
down_revision = '0021_need_resources'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('ab_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone', sa.String(length=30), nullable=True))


def downgrade():
    with op.batch_alter_table('ab_user', schema=None) as batch_op:
        batch_op.drop_column('phone')
