"""Views of the three lists and micro-wishes: declarations, plus the need's matching panel."""
from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.security.decorators import has_access

from app import storage
from app.errors import DomainError
from app.models.lists import MicroWish, Need, NeedResource, Resource, ServiceItem
from app.services.lists import (
    MICRO_WISH_FLOW,
    NEED_FLOW,
    NEED_RESOURCE_FLOW,
    RESOURCE_FLOW,
    SERVICE_ITEM_FLOW,
    link,
    need_timeline,
    propose_resource,
    suggest,
)
from app.views.base import EntityView

REVIEW_COLUMNS = ["status", "reject_reason", "created_on", "changed_on"]


class ResourceView(EntityView):
    model = Resource
    workflow = RESOURCE_FLOW
    list_columns = ["title", "unit", "category", "year", "quantity", "measure", "status"]
    show_columns = ["title", "unit", "year", "category", "content", "quantity", "measure",
                    "available_from", "available_to", "contact", "phone_shown", *REVIEW_COLUMNS]
    add_columns = edit_columns = ["unit", "year", "category", "title", "content", "quantity",
                                  "measure", "available_from", "available_to", "contact", "phone"]
    search_columns = ["title", "unit", "category", "year", "status"]
    order_columns = ["title", "year", "status", "changed_on"]
    base_order = ("changed_on", "desc")
    import_columns = ["unit", "year", "category", "title", "content", "quantity", "measure",
                      "available_from", "available_to", "contact", "phone"]
    import_key = ("unit", "year", "title")
    import_examples = {"year": "2026", "title": "党群活动室", "content": "可容纳50人，周末开放",
                       "quantity": "1", "measure": "间", "available_from": "2026-01-01"}


class ServiceItemView(EntityView):
    model = ServiceItem
    workflow = SERVICE_ITEM_FLOW
    list_columns = ["title", "provider_unit", "category", "year", "capacity", "points", "status"]
    show_columns = ["title", "provider_unit", "year", "category", "content", "capacity", "points",
                    "start_date", "end_date", "place", "resources", "needs", "commitment",
                    "fulfilment", *REVIEW_COLUMNS]
    add_columns = edit_columns = ["provider_unit", "year", "category", "title", "content",
                                  "capacity", "points", "start_date", "end_date", "place",
                                  "commitment"]
    search_columns = ["title", "provider_unit", "category", "year", "status"]
    order_columns = ["title", "year", "status", "changed_on"]
    base_order = ("changed_on", "desc")
    import_columns = ["provider_unit", "year", "category", "title", "content", "capacity",
                      "points", "start_date", "end_date", "place", "commitment"]
    import_key = ("provider_unit", "year", "title")
    import_examples = {"year": "2026", "title": "健康义诊进社区", "capacity": "20", "points": "10",
                       "start_date": "2026-03-01", "end_date": "2026-12-31"}


class NeedView(EntityView):
    model = Need
    workflow = NEED_FLOW
    show_template = "lists/need_show.html"
    list_columns = ["title", "community", "category", "urgency", "status", "assigned_unit",
                    "step_due", "overdue_step"]
    show_columns = ["title", "source", "requester_name", "requester_phone_shown", "community",
                    "grid", "category", "content", "repeat_reports", "urgency", "status",
                    "submitted_by_unit",
                    "reject_reason", "assigned_unit", "assigned_members", "dispatch_note",
                    "deadline", "overdue_step", "plan", "plan_due", "decline_reason", "result",
                    "accepted_on", "dispatched_on", "taken_on", "completed_on",
                    "resident_satisfaction", "resident_comment", "resident_rated_on",
                    "visitor", "visited_on",
                    "satisfaction", "visit_comment", "service_items", "created_on", "code"]
    add_columns = ["source", "requester_name", "requester_phone", "community", "grid",
                   "category", "title", "content", "urgency"]
    edit_columns = ["requester_name", "requester_phone", "grid", "category", "title", "content",
                    "urgency"]
    search_columns = ["title", "community", "category", "urgency", "status", "assigned_unit",
                      "source", "overdue", "created_on", "completed_on", "closed_on_time",
                      "matched", "assigned_members"]
    order_columns = ["title", "urgency", "status", "deadline", "created_on"]
    base_order = ("step_due_first", "asc")  # Need.__orders__
    formatters_columns = {"overdue": lambda v: "逾期" if v else ""}
    permission_of = {"link": "edit", "propose": "edit", "photo": "read"}
    import_columns = ["community", "grid", "category", "title", "content", "urgency", "source",
                      "requester_name", "requester_phone", "created_on", "status", "accepted_on",
                      "dispatched_on", "completed_on", "result", "satisfaction", "code"]
    # A re-import updates by the office's 编号 if the file has one; else by who asked what and
    # when (a liaison's file has no 提出日期: by who asked what).
    import_key = [("code", "community"),
                  ("community", "requester_phone", "title", "created_on"),
                  ("community", "requester_phone", "title")]
    # Work done before the panel (an office's ledger): its status and the dates of its steps,
    # filled only by a role that may make the loop's first moves (Need.validate checks them).
    import_past_work = ("created_on", "status", "accepted_on", "dispatched_on", "completed_on",
                        "result", "satisfaction")
    import_examples = {"title": "楼道杂物清理", "content": "3号楼楼道堆放杂物存在消防隐患"}

    def _show(self, pk):
        widgets = super()._show(pk)
        need = self.datamodel.get(pk)
        widgets["timeline"] = need_timeline(self.datamodel.session, need)
        if self.appbuilder.sm.has_access("can_edit", self.class_permission_name):
            widgets["suggestions"] = suggest(self.datamodel.session, need)
        if need is not None and need.photo_id is not None:
            widgets["photo"] = url_for(f"{self.endpoint}.photo", pk=pk)
        if need is not None and need.handling_photo_id is not None:
            widgets["handling_photo"] = url_for("MobileView.need_photo", pk=pk)
        return widgets

    @expose("/photo/<int:pk>")
    @has_access
    def photo(self, pk):
        """The photo a resident sent with the need (扫码点单): to whoever may read the need."""
        need = self.datamodel.get(pk)
        found = storage.get(need.photo_id) if need is not None and need.photo_id else None
        if found is None:
            abort(404)
        return storage.response(found, found.name)

    @expose("/propose/<int:pk>/<int:resource_id>", methods=["POST"])
    @has_access
    def propose(self, pk, resource_id):
        """联合会提议: put a unit's published resource forward for the need; the unit's liaison
        takes it on or declines (资源对接)."""
        need = self.datamodel.get(pk)
        if need is None:
            abort(404)
        try:
            propose_resource(self.datamodel.session, need, resource_id,
                             (request.form.get("note") or "").strip() or None)
            flash("已向提供单位提议该资源，待其联络员认领", "success")
        except DomainError as exc:
            flash(str(exc), "danger")
        return redirect(url_for(f"{self.endpoint}.show", pk=pk))

    @expose("/link/<int:pk>/<int:item_id>", methods=["POST"])
    @has_access
    def link(self, pk, item_id):
        need = self.datamodel.get(pk)
        if need is None:
            abort(404)
        try:
            link(self.datamodel.session, need, item_id, request.form.get("linked") != "0")
            flash("已更新需求与服务项目的关联", "success")
        except DomainError as exc:
            flash(str(exc), "danger")
        return redirect(url_for(f"{self.endpoint}.show", pk=pk))


class NeedResourceView(EntityView):
    model = NeedResource
    workflow = NEED_RESOURCE_FLOW
    list_columns = ["need", "resource", "status", "created_on", "answered_on"]
    show_columns = ["need", "resource", "note", "status", "answer", "answered_on", "created_on",
                    "changed_on"]
    add_columns = ["need", "resource", "note"]
    edit_columns = ["note"]
    search_columns = ["need", "resource", "status", "created_on"]
    order_columns = ["created_on", "status"]
    base_order = ("created_on", "desc")


class MicroWishView(EntityView):
    model = MicroWish
    workflow = MICRO_WISH_FLOW
    list_columns = ["content", "resident_name_masked", "community", "status", "claimant_member",
                    "claimant_unit", "claimed_on", "fulfilled_on"]
    show_columns = ["content", "resident_name_masked", "resident_phone_shown", "community",
                    "grid", "status", "reject_reason", "claimant_member", "claimant_unit",
                    "claimed_on", "fulfilled_on", "proof", "feedback", "confirmed_on",
                    "created_on"]
    add_columns = ["resident_name", "resident_phone", "community", "grid", "content"]
    edit_columns = ["resident_name", "resident_phone", "grid", "content"]
    search_columns = ["content", "community", "status", "claimant_unit", "created_on",
                      "claimed_on", "fulfilled_on", "claimant_member"]
    order_columns = ["status", "claimed_on", "fulfilled_on", "created_on"]
    base_order = ("created_on", "desc")
    import_columns = ["community", "grid", "resident_name", "resident_phone", "content",
                      "created_on", "status", "claimant_member", "claimant_unit", "claimed_on",
                      "fulfilled_on", "proof", "feedback"]
    # A re-import updates by who wished what and when (a file without 提出日期: by who wished
    # what); the resident's phone if the file has it, else the name.
    import_key = [("community", "resident_phone", "content", "created_on"),
                  ("community", "resident_name", "content", "created_on"),
                  ("community", "resident_name", "content")]
    # Wishes granted before the panel (an office's ledger): status, claimant and the dates of
    # the steps, filled only by a role that may review wishes (MicroWish.__past_work__ checks them).
    import_past_work = ("created_on", "status", "claimant_member", "claimant_unit", "claimed_on",
                        "fulfilled_on", "proof", "feedback")
    import_examples = {"resident_name": "张桂兰", "content": "希望有人帮忙修理家中漏水的水龙头"}

