"""督办 — the workflow every supervised task shares (app/models/supervision.py): started by its
lead unit or the supervising side, closed with a result by the supervising side only, reopened
with a reason. Each kind of task gets its table from `supervision_flow`, naming who supervises
it; the moves, their labels and fields are the same for all."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app import clock
from app.models.supervision import TaskStatus
from app.security.roles import ADMIN_GROUP, LIAISON_GROUP
from app.security.scope import Principal
from app.services.workflow import Field, Transition, Workflow


def is_admin(principal: Principal) -> bool:
    return principal.system or bool(principal.role_names & (ADMIN_GROUP | {"Admin"}))


def _leads(task, principal):
    if is_admin(principal) or task.lead_unit_id in principal.unit_ids:
        return True
    return "只有牵头单位或主办方可以执行此操作"


def _close(task, data, principal):
    task.closed_on = data.get("closed_on") or clock.today()
    task.result = data["result"]


def _reopen(task, data, principal):
    # The note first: loading the notes may flush, and a done task needs its date.
    task.add_note(f"重新办理：{data['reason']}")
    task.closed_on = None


def supervision_flow(model, supervises: Callable[[Any, Principal], bool | str] | None = None,
                     starts: Callable[[Any, Principal], bool | str] = _leads) -> Workflow:
    """The table of a supervised model. `supervises` (row, principal) → True or a reason: who
    may close and reopen it besides holding an admin role (a rectification: the inspecting
    side only, never the node answering for it); `starts`: who may start it."""
    return Workflow(model, (
        Transition("start", "开始办理", (TaskStatus.TODO,), TaskStatus.IN_HAND,
                   ADMIN_GROUP | LIAISON_GROUP, rule=starts),
        Transition("close", "办结", (TaskStatus.TODO, TaskStatus.IN_HAND), TaskStatus.DONE,
                   ADMIN_GROUP, fields=(
                       Field("closed_on", "办结日期（默认今天）", "date"),
                       Field("result", "办理结果", "textarea", required=True),
                   ), rule=supervises, apply=_close, style="success"),
        Transition("reopen", "重新办理", (TaskStatus.DONE,), TaskStatus.IN_HAND, ADMIN_GROUP,
                   fields=(Field("reason", "重新办理原因", "textarea", required=True),),
                   rule=supervises, apply=_reopen, style="warning"),
    ))
