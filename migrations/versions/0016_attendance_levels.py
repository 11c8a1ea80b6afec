"""meetings: the attendee level each joint body requires per meeting type (issue 24)

Revision ID: 0016_attendance_levels
Revises: 0015_need_time_limits
Create Date: 2026-12-06 19:30:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0016_attendance_levels'
down_revision = '0015_need_time_limits'
branch_labels = None
depends_on = None

# The practice's defaults (app/models/meetings.py CADENCE_DEFAULTS), for the bodies there are.
LEVELS = {'xun_level': '党务干部', 'monthly_level': '分管领导', 'quarterly_level': '一把手',
          'yearly_level': '一把手'}


def upgrade():
    with op.batch_alter_table('joint_body', schema=None) as batch_op:
        for column, default in LEVELS.items():
            batch_op.add_column(sa.Column(column, sa.String(length=8), nullable=False,
                                          server_default=default))


def downgrade():
    with op.batch_alter_table('joint_body', schema=None) as batch_op:
        for column in reversed(LEVELS):
            batch_op.drop_column(column)
