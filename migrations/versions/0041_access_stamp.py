"""the access stamp (issue 30, app/security/models.py AccessStamp): one row whose number rises
in the transaction of every change to a role's rights, so that each app process keeps the
roles' rights between requests (a join of four tables on every request) and sees a change made
on any host at its next request

Revision ID: 0041_access_stamp
Revises: 0040_need_open
Create Date: 2026-12-07 20:40:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0041_access_stamp'
down_revision = '0040_need_open'
branch_labels = None
depends_on = None


def upgrade():
    stamp = op.create_table(
        'access_stamp',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('version', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.bulk_insert(stamp, [{'id': 1, 'version': 0}])


def downgrade():
    op.drop_table('access_stamp')
