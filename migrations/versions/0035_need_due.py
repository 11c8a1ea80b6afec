"""performance: the need list's default order from stored columns an index walks (issue 30)

The list opened on a CASE over status, urgency, created_on and deadline with the configured
time limits: no index could serve it, and PostgreSQL sorted all 300,000 needs of the city for
each page (201 of 248 ms of the first page). Now each need stores when its current step falls
due (`step_due_on`, none once closed) and its place (`due_rank`: 0 open with a due time, 1 open
without one, 2 closed), rewritten on every write (app/models/lists.py, `_keep_step_due`), and
the partial index of the live rows ix_need_live_step_due is in the list's order. The time limits
they were computed with are kept in `need_due_basis` (`flask gongjian init` refills them when
the configuration changes).

The fill is one UPDATE of the open needs (`fill_step_due`, the application's own, with the
configuration it runs with); a closed need's columns are their defaults.

Revision ID: 0035_need_due
Revises: 0034_figure_indexes
Create Date: 2026-12-07 11:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0035_need_due'
down_revision = '0034_figure_indexes'
branch_labels = None
depends_on = None

LIVE = "deleted_on IS NULL"


def upgrade():
    from app.models.lists import ensure_step_due

    with op.batch_alter_table("need") as batch:
        batch.add_column(sa.Column("step_due_on", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("due_rank", sa.SmallInteger(), nullable=False,
                                   server_default="2"))
    op.create_table(
        "need_due_basis",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.Column("filled_on", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # The index before the fill: built after it, over the rows the fill has just rewritten,
    # PostgreSQL would not let a transaction older than the migration's use it (indcheckxmin)
    # — the list would sort every need until the last such transaction ended.
    op.create_index("ix_need_live_step_due", "need",
                    ["due_rank", "step_due_on", sa.text("completed_on DESC"), sa.text("id DESC")],
                    unique=False, postgresql_where=sa.text(LIVE), sqlite_where=sa.text(LIVE))
    ensure_step_due(op.get_bind())


def downgrade():
    op.drop_index("ix_need_live_step_due", table_name="need")
    op.drop_table("need_due_basis")
    with op.batch_alter_table("need") as batch:
        batch.drop_column("due_rank")
        batch.drop_column("step_due_on")
