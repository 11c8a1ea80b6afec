"""The need's time limits as the practice states them (DOMAIN.md §1, config.py's defaults),
written out independently of the application's code, for the tests that count overdue needs."""
from datetime import datetime, timedelta

# The whole loop from intake, per urgency (复杂: to be taken on with a plan).
LIMIT_HOURS = {"一般": 1, "重大": 24, "复杂": 24 * 7}
# How far into the whole limit each waiting status's step is due: 受理 10 %, 派单 +20 %, 接单 +20 %.
STEP_DUE = {"待受理": 0.1, "已受理": 0.3, "已派单": 0.5}
OPEN = ("待受理", "已受理", "已派单", "办理中")
STEP_OF = {"待受理": "受理", "已受理": "派单", "已派单": "接单", "办理中": "办理"}
COLUMNS = "t.status, t.urgency, t.created_on, t.deadline"


def _moment(value):
    return value if isinstance(value, datetime) or value is None else datetime.fromisoformat(str(value))


def is_overdue(row, now: datetime) -> bool:
    """Late at its current step: past its deadline, or past its step's share since intake."""
    if row["status"] not in OPEN:
        return False
    deadline, created = _moment(row["deadline"]), _moment(row["created_on"])
    if deadline is not None and deadline < now:
        return True
    share = STEP_DUE.get(row["status"])
    return share is not None and created < now - timedelta(hours=LIMIT_HOURS[row["urgency"]] * share)


def refill_step_due(ctx) -> None:
    """After a test wrote a need in SQL (a row inserted, a status or date set), as after a bulk
    load: the stored due time the need list orders by follows (app.models.lists.fill_step_due)."""
    from app.models.lists import fill_step_due

    with ctx.session() as session:
        fill_step_due(session.connection())
        session.commit()
