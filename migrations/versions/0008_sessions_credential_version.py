"""accounts: a credential version per user, server-side browser sessions and refresh-token ids
(issue 16)

A password change, an administrator's reset or lock and a deactivation bump
`ab_user.credential_version`, which ends every session and token issued under the old one;
`user_session` holds the browser sessions (logout deletes its own row), `refresh_token` the
refresh tokens that may still be used (each refresh deletes its row and adds the new one's).

Revision ID: 0008_sessions
Revises: 0007_live_order
Create Date: 2026-12-06 13:00:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0008_sessions'
down_revision = '0007_live_order'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('ab_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('credential_version', sa.Integer(),
                                      server_default=sa.text('1'), nullable=False))
    op.create_table(
        'user_session',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('credential_version', sa.Integer(), nullable=False),
        sa.Column('created_on', sa.DateTime(), nullable=False),
        sa.Column('seen_on', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_session_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_user_session_seen_on'), ['seen_on'], unique=False)
    op.create_table(
        'refresh_token',
        sa.Column('jti', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('expires_on', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('jti'),
    )
    with op.batch_alter_table('refresh_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refresh_token_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_refresh_token_expires_on'), ['expires_on'],
                              unique=False)


def downgrade():
    # Dropping a table drops its indexes (MariaDB refuses to drop the user_id index first: its
    # foreign key needs it).
    op.drop_table('refresh_token')
    op.drop_table('user_session')
    with op.batch_alter_table('ab_user', schema=None) as batch_op:
        batch_op.drop_column('credential_version')
