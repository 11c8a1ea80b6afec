"""accounts: forced password change and login lockout on ab_user

Revision ID: 0005_accounts
Revises: 0004_meetings
Create Date: 2026-11-22 00:45:51.517570

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005_accounts'
down_revision = '0004_meetings'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('ab_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(),
                                      server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('locked_until', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('ab_user', schema=None) as batch_op:
        batch_op.drop_column('locked_until')
        batch_op.drop_column('must_change_password')
