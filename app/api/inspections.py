"""REST resources of 季度督查 and 工作要点, with their workflow moves."""
from app.models.inspections import (
    Inspection,
    InspectionFinding,
    InspectionItem,
    Rectification,
    RectificationNote,
)
from app.models.workplan import WorkPlanItem, WorkPlanNote
from app.services import inspections as service
from app.views.base import EntityApi

TASK = ["lead_unit_id", "co_units", "deadline", "status", "overdue", "closed_on",
        "closed_on_time", "result"]
NOTE = ["note_date", "kind", "unit_id", "author", "content", "progress"]


class InspectionItemApi(EntityApi):
    model = InspectionItem
    list_columns = show_columns = ["id", "seq", "name", "description", "active"]


class InspectionApi(EntityApi):
    model = Inspection
    workflow = service.INSPECTION_FLOW
    list_columns = ["id", "organizer_id", "title", "year", "quarter", "inspected_on", "status"]
    show_columns = ["id", "organizer_id", "title", "year", "quarter", "inspected_on",
                    "communities", "units", "summary", "status", "published_on"]


class InspectionFindingApi(EntityApi):
    model = InspectionFinding
    list_columns = show_columns = ["id", "inspection_id", "item_id", "org_id", "unit_id",
                                   "result", "note", "responsible_unit_id",
                                   "responsible_org_id", "deadline"]


class RectificationApi(EntityApi):
    """Opened by saving a failing finding, never posted here."""

    model = Rectification
    workflow = service.RECTIFICATION_FLOW
    exclude_route_methods = {"post"}
    list_columns = ["id", "finding_id", "content", "org_id", "lead_unit_id", "deadline",
                    "status", "overdue", "closed_on"]
    show_columns = ["id", "finding_id", "content", "org_id", *TASK]


class RectificationNoteApi(EntityApi):
    model = RectificationNote
    list_columns = show_columns = ["id", "rectification_id", *NOTE]


class WorkPlanItemApi(EntityApi):
    model = WorkPlanItem
    workflow = service.WORK_PLAN_FLOW
    list_columns = ["id", "org_id", "year", "number", "content", "lead_unit_id", "deadline",
                    "status", "overdue", "closed_on"]
    show_columns = ["id", "org_id", "year", "number", "content", *TASK]


class WorkPlanNoteApi(EntityApi):
    model = WorkPlanNote
    list_columns = show_columns = ["id", "item_id", *NOTE]
