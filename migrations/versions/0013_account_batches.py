"""accounts: batches of accounts opened together and their 账号通知单 (issue 20)

Revision ID: 0013_account_batches
Revises: 0012_uploads
Create Date: 2026-12-06 16:10:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0013_account_batches'
down_revision = '0012_uploads'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'account_batch',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=False),
        sa.Column('created_on', sa.DateTime(), nullable=False),
        sa.Column('role', sa.String(length=64), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('pending', sa.Text(), nullable=False),
        sa.Column('problems', sa.Text(), nullable=False),
        sa.Column('slips', sa.Text(), nullable=False),
        sa.Column('shown_on', sa.DateTime(), nullable=True),
        sa.Column('printed', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['created_by_id'], ['ab_user.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('account_batch', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_batch_created_by_id'), ['created_by_id'],
                              unique=False)


def downgrade():
    op.drop_table('account_batch')
