"""agreements: 已到期 is computed from the dates, not a stored status (issue 24)

An agreement once moved to 已到期 by hand was a signed one past its end: it becomes 已签订
again, and its 有效状态 (Agreement.validity) says 已到期 from its dates.

Revision ID: 0019_agreement_validity
Revises: 0018_need_handling_photo
Create Date: 2026-12-06 19:35:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0019_agreement_validity'
down_revision = '0018_need_handling_photo'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("UPDATE agreement SET status = '已签订' WHERE status = '已到期'")


def downgrade():
    op.execute("UPDATE agreement SET status = '已到期' WHERE status = '已签订' "
               "AND valid_to < CURRENT_DATE")
