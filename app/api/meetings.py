"""REST resources of joint meetings, with the workflow moves and the generation of a body's
meeting plan (`POST /api/v1/joint_body/<pk>/generate`, body {"period": "2026Q3"} or
{"start": "2026-07-01", "end": "2026-09-30"})."""
from datetime import date

from flask import request
from flask_appbuilder import expose
from flask_appbuilder.api import safe
from flask_appbuilder.security.decorators import protect

from app.errors import Conflict, DomainError
from app.models.meetings import (
    CADENCE_DEFAULTS,
    AgendaItem,
    Attendance,
    BodyMember,
    JointBody,
    Meeting,
    Resolution,
    SupervisionNote,
)
from app.services import meetings as service
from app.views.base import EntityApi

# A body's settings: its cadence and the attendee level required per meeting type.
SETTINGS = list(CADENCE_DEFAULTS)


class JointBodyApi(EntityApi):
    model = JointBody
    list_columns = show_columns = ["id", "name", "level", "host_id", "description", *SETTINGS]
    permission_of = {"generate": "edit"}

    @expose("/<int:pk>/generate", methods=["POST"])
    @protect()
    @safe
    def generate(self, pk):
        """Plan the body's meetings for a period from its cadence (existing ones are kept)."""
        body = self.datamodel.get(pk)
        if body is None:
            return self.response_404()
        data = request.get_json(silent=True) or {}
        try:
            if data.get("period"):
                start, end = service.parse_period(str(data["period"]))
            else:
                try:
                    start = date.fromisoformat(str(data.get("start", "")))
                    end = date.fromisoformat(str(data.get("end", "")))
                except ValueError:
                    raise DomainError("请填写期间（如 2026Q3），或填写开始日期和结束日期",
                                      "period") from None
            result = service.generate_meetings(self.datamodel.session, body, start, end)
        except Conflict as exc:
            return self.response(409, message=str(exc))
        except DomainError as exc:
            return self.response_422(message=str(exc))
        return self.response(200, created=[m.id for m in result.created], skipped=result.skipped)


class BodyMemberApi(EntityApi):
    model = BodyMember
    list_columns = show_columns = ["id", "body_id", "unit_id", "role", "representative",
                                   "representative_title"]


class MeetingApi(EntityApi):
    model = Meeting
    workflow = service.MEETING_FLOW
    list_columns = ["id", "body_id", "type", "planned_date", "status", "held_on", "place"]
    show_columns = ["id", "body_id", "type", "planned_date", "status", "held_on", "place",
                    "chair", "recorder", "minutes", "cancel_reason"]


class AttendanceApi(EntityApi):
    model = Attendance
    list_columns = show_columns = ["id", "meeting_id", "unit_id", "attendee", "attendee_level",
                                   "status", "note", "non_compliant"]


class AgendaItemApi(EntityApi):
    model = AgendaItem
    list_columns = show_columns = ["id", "meeting_id", "seq", "title", "proposing_unit_id",
                                   "description"]


class ResolutionApi(EntityApi):
    model = Resolution
    workflow = service.RESOLUTION_FLOW
    list_columns = ["id", "meeting_id", "content", "lead_unit_id", "deadline", "status",
                    "overdue", "closed_on"]
    show_columns = ["id", "meeting_id", "content", "lead_unit_id", "co_units", "deadline",
                    "status", "overdue", "closed_on", "result"]


class SupervisionNoteApi(EntityApi):
    model = SupervisionNote
    list_columns = show_columns = ["id", "resolution_id", "note_date", "kind", "unit_id",
                                   "author", "content", "progress"]
