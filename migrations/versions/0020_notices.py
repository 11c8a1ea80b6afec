"""notices: the outbox and message centre, and each user's channels (issue 23)

Revision ID: 0020_notices
Revises: 0019_agreement_validity
Create Date: 2026-12-06 19:20:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0020_notices'
down_revision = '0019_agreement_validity'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'notice',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('event_key', sa.String(length=160), nullable=False),
        sa.Column('event', sa.String(length=40), nullable=False),
        sa.Column('recipient_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=10), nullable=False),
        sa.Column('resource', sa.String(length=40), nullable=True),
        sa.Column('record_id', sa.Integer(), nullable=True),
        sa.Column('payload', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_try_on', sa.DateTime(), nullable=True),
        sa.Column('claim', sa.String(length=32), nullable=True),
        sa.Column('claimed_on', sa.DateTime(), nullable=True),
        sa.Column('error', sa.String(length=500), nullable=True),
        sa.Column('created_on', sa.DateTime(), nullable=False),
        sa.Column('sent_on', sa.DateTime(), nullable=True),
        sa.Column('read_on', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['recipient_id'], ['ab_user.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('event_key', 'recipient_id', 'channel', name='uq_notice_key'),
    )
    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.create_index('ix_notice_inbox', ['recipient_id', 'channel', 'read_on', 'id'],
                              unique=False)
        batch_op.create_index('ix_notice_due', ['status', 'next_try_on'], unique=False)
    with op.batch_alter_table('ab_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notify_email', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('notify_webhook', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('ab_user', schema=None) as batch_op:
        batch_op.drop_column('notify_webhook')
        batch_op.drop_column('notify_email')
    op.drop_table('notice')
