"""Views of 季度督查 and 工作要点: declarations, plus a round's summary, a finding's photos and
the rectifications it opened."""
from flask import abort, flash, redirect, url_for
from flask_appbuilder import expose
from flask_appbuilder.security.decorators import has_access
from sqlalchemy import select

from app import storage
from app.errors import DomainError
from app.models.inspections import (
    FindingPhoto,
    Inspection,
    InspectionFinding,
    InspectionItem,
    InspectionStatus,
    Rectification,
    RectificationNote,
)
from app.models.workplan import WorkPlanItem, WorkPlanNote
from app.services import inspections as service
from app.services.meetings import max_bytes
from app.views.base import EntityView
from app.views.fields import required
from app.views.supervision import ProgressNoteView, SupervisedView


def _yes_no(value):
    return "是" if value else "否"


def _names(rows):
    return "、".join(str(row) for row in rows or ())


class InspectionItemView(EntityView):
    model = InspectionItem
    list_columns = ["seq", "name", "description", "active"]
    show_columns = ["seq", "name", "description", "active", "created_on", "changed_on"]
    add_columns = edit_columns = ["seq", "name", "description", "active"]
    search_columns = ["name", "active"]
    order_columns = ["seq"]
    base_order = ("seq", "asc")
    validators_columns = {"name": required("督查项目")}
    formatters_columns = {"active": _yes_no}


class InspectionView(EntityView):
    model = Inspection
    workflow = service.INSPECTION_FLOW
    show_template = "supervision/inspection_show.html"
    list_columns = ["year", "quarter", "title", "organizer", "inspected_on", "status"]
    show_columns = ["organizer", "title", "year", "quarter", "inspected_on", "communities",
                    "units", "status", "published_on", "summary", "created_on", "changed_on"]
    add_columns = ["organizer", "title", "year", "quarter", "inspected_on", "communities",
                   "units", "summary"]
    edit_columns = ["title", "inspected_on", "communities", "units", "summary"]
    search_columns = ["title", "organizer", "year", "quarter", "status"]
    order_columns = ["year", "status"]
    base_order = ("latest_first", "asc")  # Inspection.__orders__
    validators_columns = {"title": required("督查名称"), "year": required("年度")}
    formatters_columns = {"communities": _names, "units": _names}
    description_columns = {"summary": "本轮督查的总体情况；公示时与汇总结果一同展示，请勿填写个人信息",
                           "quarter": "1 到 4"}

    def _show(self, pk):
        widgets = super()._show(pk)
        inspection = self.datamodel.get(pk)
        widgets["summary"] = service.summary(self.datamodel.session, inspection)
        widgets["can_find"] = (self.appbuilder.sm.has_access("can_add", "inspection_finding")
                               and inspection.status == InspectionStatus.OPEN)
        return widgets


class InspectionFindingView(EntityView):
    model = InspectionFinding
    show_template = "supervision/finding_show.html"
    list_columns = ["inspection", "subject", "item", "result", "note"]
    show_columns = ["inspection", "item", "org", "unit", "result", "note", "responsible_unit",
                    "responsible_org", "deadline", "created_on", "changed_on"]
    add_columns = ["inspection", "item", "org", "unit", "result", "note", "responsible_unit",
                   "responsible_org", "deadline"]
    edit_columns = ["item", "org", "unit", "result", "note", "responsible_unit",
                    "responsible_org", "deadline"]
    search_columns = ["inspection", "item", "org", "unit", "result"]
    order_columns = ["result"]
    base_order = ("id", "desc")
    description_columns = {
        "org": "被督查社区与被督查单位二选一，须是本轮督查的对象",
        "note": "“部分符合”“不符合”须说明情况，作为整改依据",
        "responsible_unit": "“部分符合”“不符合”时必填：整改责任单位或责任党组织（二者至少其一），"
                            "保存即下达整改任务",
        "deadline": "“部分符合”“不符合”时必填；不早于督查日期"}
    permission_of = {"attach": "edit", "photo": "read", "unphoto": "edit"}

    def _show(self, pk):
        widgets = super()._show(pk)
        session = self.datamodel.session
        finding = self.datamodel.get(pk)
        widgets["photos"] = session.execute(select(FindingPhoto).where(
            FindingPhoto.finding_id == pk).order_by(FindingPhoto.id)).scalars().all()
        widgets["rectifications"] = session.execute(select(Rectification).where(
            Rectification.finding_id == pk).order_by(Rectification.id)).scalars().all()
        sm = self.appbuilder.sm
        widgets["can_photo"] = (sm.has_access("can_edit", "inspection_finding")
                                and finding.inspection.status == InspectionStatus.OPEN)
        widgets["max_mb"] = f"{max_bytes() / (1024 * 1024):g}"
        return widgets

    @expose("/attach/<int:pk>", methods=["POST"])
    @has_access
    def attach(self, pk):
        return self.receive_file(pk, service.add_photo, "照片已上传")

    @expose("/unphoto/<int:pk>/<int:photo_id>", methods=["POST"])
    @has_access
    def unphoto(self, pk, photo_id):
        """Delete a photo of the finding (the inspecting side, while the round is open)."""
        found = self.datamodel.session.execute(
            select(FindingPhoto).where(FindingPhoto.id == photo_id)).scalar_one_or_none()
        if found is None or found.finding_id != pk:
            abort(404)
        try:
            service.delete_photo(self.datamodel.session, found,
                                 self.appbuilder.sm.current_user.id)
        except DomainError as exc:
            flash(str(exc), "danger")
        else:
            flash(f"已删除照片“{found.filename}”（可由管理员从回收站恢复）", "success")
        return redirect(url_for(f"{self.endpoint}.show", pk=pk))

    @expose("/photo/<int:photo_id>")
    @has_access
    def photo(self, photo_id):
        found = self.datamodel.session.execute(
            select(FindingPhoto).where(FindingPhoto.id == photo_id)).scalar_one_or_none()
        stored = storage.get(found.file_id) if found is not None and found.file_id else None
        if stored is None:
            abort(404)
        return storage.response(stored, found.filename)


class RectificationView(SupervisedView):
    """Opened by saving a failing finding (InspectionFinding._rectify), never added here."""

    model = Rectification
    workflow = service.RECTIFICATION_FLOW
    exclude_route_methods = {"add"}
    list_columns = ["content", "responsible", "deadline", "status", "overdue", "closed_on"]
    show_columns = ["finding", "content", "lead_unit", "org", "co_units", "deadline", "status",
                    "overdue", "closed_on", "result", "created_on", "changed_on"]
    add_columns = edit_columns = ["content", "lead_unit", "org", "co_units", "deadline"]  # no add route
    search_columns = ["content", "finding", "lead_unit", "org", "status", "overdue", "deadline"]
    order_columns = ["deadline", "status", "closed_on"]
    label_columns = {"deadline": "整改时限", "result": "整改结果"}
    validators_columns = {"deadline": required("整改时限")}
    description_columns = {
        "lead_unit": "被督查单位整改时选择责任单位；社区整改时选择责任党组织",
        "content": "按督查发现生成，可修改"}


class RectificationNoteView(ProgressNoteView):
    model = RectificationNote


class WorkPlanItemView(SupervisedView):
    model = WorkPlanItem
    workflow = service.WORK_PLAN_FLOW
    list_columns = ["year", "number", "content", "org", "lead_unit", "deadline", "status",
                    "overdue"]
    show_columns = ["org", "year", "number", "content", "lead_unit", "co_units", "deadline",
                    "status", "overdue", "closed_on", "result", "created_on", "changed_on"]
    add_columns = ["org", "year", "number", "content", "lead_unit", "co_units", "deadline"]
    edit_columns = ["number", "content", "lead_unit", "co_units", "deadline"]
    search_columns = ["content", "org", "year", "lead_unit", "status", "overdue", "deadline"]
    order_columns = ["year", "deadline", "status", "closed_on"]
    validators_columns = {"content": required("工作要点内容"), "deadline": required("办结时限"),
                          "year": required("年度"), "number": required("序号")}


class WorkPlanNoteView(ProgressNoteView):
    model = WorkPlanNote
