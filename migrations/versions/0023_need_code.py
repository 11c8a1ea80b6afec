"""lists: a need's 编号 (the office's own number), the key a re-import updates by (issue 19)

Revision ID: 0023_need_code
Revises: 0022_account_phone
Create Date: 2026-12-06 22:50:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0023_need_code'
down_revision = '0022_account_phone'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('need', schema=None) as batch_op:
        batch_op.add_column(sa.Column('code', sa.String(length=50), nullable=True))
        batch_op.create_index(batch_op.f('ix_need_code'), ['code'], unique=False)


def downgrade():
    with op.batch_alter_table('need', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_need_code'))
        batch_op.drop_column('code')
