"""Views of joint meetings: declarations, plus a meeting page that reads like a record, the
generation of a body's meeting plan, and a meeting's files."""
from datetime import date

from flask import abort, flash, redirect, render_template, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.security.decorators import has_access
from sqlalchemy import select
from wtforms import TextAreaField

from app import clock, storage
from app.errors import DomainError, committed
from app.models.meetings import (
    CADENCE_DEFAULTS,
    AgendaItem,
    Attendance,
    BodyMember,
    JointBody,
    Meeting,
    MeetingAttachment,
    MeetingStatus,
    Resolution,
    SupervisionNote,
)
from app.services import meetings as service
from app.views.base import EntityView
from app.views.fields import required
from app.views.supervision import SupervisedView


def _flag(text):
    return lambda value: text if value else ""


def _yes_no(value):
    return "是" if value else "否"


def _names(rows):
    return "、".join(str(row) for row in rows or ())


# A body's settings: its cadence and the attendee level required per meeting type.
SETTINGS = list(CADENCE_DEFAULTS)


class JointBodyView(EntityView):
    model = JointBody
    show_template = "meetings/body_show.html"
    list_columns = ["name", "level", "host", "changed_on"]
    show_columns = ["name", "level", "host", "description", *SETTINGS, "created_on", "changed_on"]
    add_columns = edit_columns = ["name", "host", "description", *SETTINGS]
    search_columns = ["name", "level", "host"]
    order_columns = ["name", "level", "changed_on"]
    base_order = ("name", "asc")
    validators_columns = {"name": required("联席会名称"), "xun_days": required("旬例会日期"),
                          "monthly_day": required("月推进会日期"),
                          "quarterly_day": required("季研讨会日期"),
                          "yearly_month": required("年总结会月份"),
                          "yearly_day": required("年总结会日期")}
    description_columns = {"xun_days": "如 1,11,21；某月没有的日期（如31日）安排在当月最后一天"}
    formatters_columns = {c: _yes_no for c in SETTINGS if c.endswith("_enabled")}
    permission_of = {"generate": "edit"}

    def _show(self, pk):
        widgets = super()._show(pk)
        body = self.datamodel.get(pk)
        session = self.datamodel.session
        widgets["members"] = session.execute(
            select(BodyMember).where(BodyMember.body_id == body.id)
            .order_by(BodyMember.id)).scalars().all()
        widgets["upcoming"] = session.execute(
            select(Meeting).where(Meeting.body_id == body.id, Meeting.status == MeetingStatus.PLANNED,
                                  Meeting.planned_date >= clock.today())
            .order_by(Meeting.planned_date, Meeting.id).limit(6)).scalars().all()
        widgets["recent"] = session.execute(
            select(Meeting).where(Meeting.body_id == body.id, Meeting.status == MeetingStatus.HELD)
            .order_by(Meeting.held_on.desc(), Meeting.id.desc()).limit(6)).scalars().all()
        widgets["can_generate"] = self.appbuilder.sm.has_access("can_edit", "joint_body")
        widgets["can_add_member"] = self.appbuilder.sm.has_access("can_add", "body_member")
        return widgets

    @expose("/generate/<int:pk>", methods=["GET", "POST"])
    @has_access
    def generate(self, pk):
        body = self.datamodel.get(pk)
        if body is None:
            abort(404)
        values = request.form if request.method == "POST" else {}
        if request.method == "POST":
            try:
                start, end = _period_of(values)
                result = service.generate_meetings(self.datamodel.session, body, start, end)
            except DomainError as exc:
                flash(str(exc), "danger")
            else:
                flash(f"已生成 {len(result.created)} 次会议计划；{result.skipped} 次已存在，未重复生成",
                      "success")
                return redirect(url_for(f"{self.endpoint}.show", pk=pk))
        return self.render_template("meetings/generate.html", body=body, values=values,
                                    title=f"生成会议计划：{body.name}")


def _period_of(values) -> tuple[date, date]:
    if (values.get("period") or "").strip():
        return service.parse_period(values["period"])
    try:
        return (date.fromisoformat(values.get("start", "")),
                date.fromisoformat(values.get("end", "")))
    except ValueError:
        raise DomainError("请填写期间（如 2026Q3），或填写开始日期和结束日期", "period") from None


class BodyMemberView(EntityView):
    model = BodyMember
    list_columns = ["unit", "body", "role", "representative", "representative_title"]
    show_columns = ["body", "unit", "role", "representative", "representative_title",
                    "created_on", "changed_on"]
    add_columns = ["body", "unit", "role", "representative", "representative_title"]
    edit_columns = ["role", "representative", "representative_title"]
    search_columns = ["body", "unit", "role"]
    order_columns = ["role"]
    base_order = ("id", "asc")


class MeetingView(EntityView):
    model = Meeting
    workflow = service.MEETING_FLOW
    show_template = "meetings/meeting_show.html"
    list_columns = ["planned_date", "type", "body", "status", "held_on", "place"]
    show_columns = ["body", "type", "planned_date", "status", "held_on", "place", "chair",
                    "recorder", "cancel_reason"]
    add_columns = ["body", "type", "planned_date", "place", "chair", "recorder"]
    edit_columns = ["type", "planned_date", "held_on", "place", "chair", "recorder", "minutes"]
    search_columns = ["body", "type", "status", "planned_date", "held_on"]
    order_columns = ["planned_date", "type", "status", "held_on"]
    base_order = ("coming_first", "asc")  # Meeting.__orders__
    validators_columns = {"planned_date": required("计划日期")}
    description_columns = {
        "minutes": "可直接粘贴会议纪要：空行分段；以“1.”“（一）”“一、”开头的行为编号条目，以“-”开头的行为列表条目",
        "held_on": "会议召开后通过“标记已召开”填写；不能晚于今天"}
    edit_form_extra_fields = {
        "minutes": TextAreaField("会议纪要", render_kw={"rows": 18, "class": "form-control"}),
    }
    permission_of = {"attach": "edit", "detach": "edit", "download": "read", "minutes": "read"}

    def _show(self, pk):
        widgets = super()._show(pk)
        meeting = self.datamodel.get(pk)
        widgets["record"] = meeting_record(self.datamodel.session, meeting, self.appbuilder.sm)
        return widgets

    @expose("/minutes/<int:pk>")
    @has_access
    def minutes(self, pk):
        """The 纪要 to print (A4): the meeting's record as its page shows it to this viewer."""
        meeting = self.datamodel.get(pk)
        if meeting is None:
            abort(404)
        return render_template("meetings/minutes_print.html", item=meeting,
                               r=meeting_record(self.datamodel.session, meeting, self.appbuilder.sm))

    @expose("/attach/<int:pk>", methods=["POST"])
    @has_access
    def attach(self, pk):
        return self.receive_file(pk, service.add_attachment, "附件已上传")

    @expose("/detach/<int:pk>/<int:attachment_id>", methods=["POST"])
    @has_access
    def detach(self, pk, attachment_id):
        attachment = _attachment(self.datamodel.session, attachment_id)
        if attachment is None or attachment.meeting_id != pk:
            abort(404)
        try:
            with committed(self.datamodel.session, "该附件已被他人删除或修改，请刷新后查看"):
                self.datamodel.session.add(attachment)
                attachment.soft_delete(self.appbuilder.sm.current_user.id)
        except DomainError as exc:
            flash(str(exc), "danger")
        else:
            flash(f"已删除附件“{attachment.filename}”（可由管理员从回收站恢复）", "success")
        return redirect(url_for(f"{self.endpoint}.show", pk=pk))

    @expose("/download/<int:attachment_id>")
    @has_access
    def download(self, attachment_id):
        attachment = _attachment(self.datamodel.session, attachment_id)
        if attachment is None:
            abort(404)
        stored = storage.get(attachment.file_id) if attachment.file_id else None
        if stored is None:
            abort(404)
        return storage.response(stored, attachment.filename)


def _attachment(session, attachment_id):
    """Read through the session: out of scope is not found."""
    return session.execute(select(MeetingAttachment)
                           .where(MeetingAttachment.id == attachment_id)).scalar_one_or_none()


def meeting_record(session, meeting, sm) -> dict:
    """What the meeting page shows besides the meeting's own fields — each read through the
    session, so every list holds only what the viewer may read."""
    def rows(stmt):
        return session.execute(stmt).scalars().all()

    attendances = rows(select(Attendance).where(Attendance.meeting_id == meeting.id)
                       .order_by(Attendance.id))
    members = rows(select(BodyMember).where(BodyMember.body_id == meeting.body_id)
                   .order_by(BodyMember.id))
    recorded = {a.unit_id for a in attendances}
    resolutions = rows(select(Resolution).where(Resolution.meeting_id == meeting.id)
                       .order_by(Resolution.id))
    notes = rows(select(SupervisionNote).where(
        SupervisionNote.resolution_id.in_([r.id for r in resolutions]))
        .order_by(SupervisionNote.note_date, SupervisionNote.id)) if resolutions else []
    present = [a for a in attendances if a.status in ("出席", "迟到")]
    return {
        "attendances": attendances,
        "not_recorded": [m for m in members if m.unit_id not in recorded],
        "members": len(members),
        "present": len(present),
        "leaders": sum(1 for a in present if a.attendee_level == "一把手"),
        "required": meeting.body.required_level(meeting.type),
        "non_compliant": sum(1 for a in attendances if a.non_compliant),
        "agenda": rows(select(AgendaItem).where(AgendaItem.meeting_id == meeting.id)
                       .order_by(AgendaItem.seq, AgendaItem.id)),
        "resolutions": resolutions,
        "notes": notes,
        "attachments": rows(select(MeetingAttachment)
                            .where(MeetingAttachment.meeting_id == meeting.id)
                            .order_by(MeetingAttachment.id)),
        # The body's next meetings review what earlier ones decided and is still open.
        "review": service.open_resolutions_for_review(session, meeting)
        if meeting.status == MeetingStatus.PLANNED else [],
        "minutes_html": meeting.minutes_html,
        "max_mb": f"{service.max_bytes() / (1024 * 1024):g}",
        "can": {name: sm.has_access(f"can_{op}", name) for name, op in (
            ("attendance", "add"), ("agenda_item", "add"), ("resolution", "add"),
            ("meeting", "edit"), ("supervision_note", "add"))},
    }


class AttendanceView(EntityView):
    model = Attendance
    list_columns = ["meeting", "unit", "attendee", "attendee_level", "status", "non_compliant"]
    show_columns = ["meeting", "unit", "attendee", "attendee_level", "status", "non_compliant",
                    "note", "created_on", "changed_on"]
    add_columns = ["meeting", "unit", "attendee", "attendee_level", "status", "note"]
    edit_columns = ["unit", "attendee", "attendee_level", "status", "note"]
    search_columns = ["meeting", "unit", "attendee_level", "status", "non_compliant"]
    order_columns = ["attendee_level", "status"]
    base_order = ("id", "desc")
    formatters_columns = {"non_compliant": _flag("不达标（低于联席会对该类会议的参会职级要求）")}


class AgendaItemView(EntityView):
    model = AgendaItem
    list_columns = ["meeting", "seq", "title", "proposing_unit"]
    show_columns = ["meeting", "seq", "title", "proposing_unit", "description", "created_on"]
    add_columns = ["meeting", "seq", "title", "proposing_unit", "description"]
    edit_columns = ["seq", "title", "proposing_unit", "description"]
    search_columns = ["meeting", "title", "proposing_unit"]
    order_columns = ["seq", "title"]
    base_order = ("id", "desc")
    validators_columns = {"title": required("议题")}


class ResolutionView(SupervisedView):
    model = Resolution
    workflow = service.RESOLUTION_FLOW
    list_columns = ["content", "meeting", "lead_unit", "deadline", "status", "overdue",
                    "closed_on"]
    show_columns = ["meeting", "content", "lead_unit", "co_units", "deadline", "status",
                    "overdue", "closed_on", "result", "created_on", "changed_on"]
    add_columns = ["meeting", "content", "lead_unit", "co_units", "deadline"]
    edit_columns = ["content", "lead_unit", "co_units", "deadline"]
    search_columns = ["content", "meeting", "lead_unit", "status", "overdue", "deadline"]
    order_columns = ["deadline", "status", "closed_on"]
    validators_columns = {"content": required("议定事项内容"), "deadline": required("办结时限")}


class SupervisionNoteView(EntityView):
    model = SupervisionNote
    list_columns = ["note_date", "resolution", "kind", "unit", "content", "progress", "author"]
    show_columns = ["resolution", "note_date", "kind", "unit", "author", "content", "progress",
                    "created_on", "changed_on"]
    add_columns = ["resolution", "note_date", "content", "progress", "unit", "author"]
    edit_columns = ["note_date", "content", "progress", "author"]
    search_columns = ["resolution", "unit", "note_date", "author"]
    order_columns = ["note_date", "progress"]
    base_order = ("note_date", "desc")
    validators_columns = {"content": required("督办情况/办理进展"), "note_date": required("日期")}
    description_columns = {
        "unit": "牵头单位报送办理进展时填写（联络员报送时自动填写本单位）；主办方的督办意见留空",
        "author": "留空则为当前用户"}
