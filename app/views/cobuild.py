"""Views of co-building: agreements (with their scanned files), dual registration (with the
printable 报到回执 and 报到证), service posts and claims, service records, point rules, the
ledger (read-only) and star ratings (computed, reviewed, published)."""
import json

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.fieldwidgets import BS3TextAreaFieldWidget
from flask_appbuilder.security.decorators import has_access
from sqlalchemy import select
from wtforms import TextAreaField

from app import clock, jobs, storage
from app.errors import DomainError
from app.extensions import db
from app.models.cobuild import (
    DEFAULT_COMMITMENTS,
    Agreement,
    MemberRegistration,
    PointEntry,
    PointRule,
    PostClaim,
    ServicePost,
    ServiceRecord,
    StarRating,
    UnitRegistration,
)
from app.models.jobs import FINISHED, JobStatus
from app.models.org import Member, Unit
from app.security.principal import _request_user
from app.services.cobuild import (
    AGREEMENT_FLOW,
    MEMBER_REGISTRATION_FLOW,
    POST_CLAIM_FLOW,
    RATING_INPUTS,
    SERVICE_RECORD_FLOW,
    STAR_RATING_FLOW,
    UNIT_REGISTRATION_FLOW,
    agreement_file,
    member_summary,
    preview_ratings,
    rating_weights,
    recent_periods,
    size_text,
    store_agreement_file,
    three_ones,
    unit_summary,
)
from app.views.base import EntityView

AUDIT_COLUMNS = ["created_on", "changed_on"]


def _stars(value):
    return "★" * value if value else "—"


class AgreementView(EntityView):
    model = Agreement
    workflow = AGREEMENT_FLOW
    show_template = "cobuild/agreement_show.html"
    list_template = "cobuild/agreement_list.html"
    list_columns = ["title", "community", "unit", "valid_from", "valid_to", "status",
                    "validity", "expiry_note"]
    show_columns = ["title", "community", "unit", "signed_on", "valid_from", "valid_to",
                    "yearly_target", "commitments", "file_name", "file_uploaded_on", "status",
                    "validity", "expiry_note", "terminate_reason", "terminated_on", *AUDIT_COLUMNS]
    add_columns = edit_columns = ["community", "unit", "title", "valid_from", "valid_to",
                                  "yearly_target", "commitments"]
    search_columns = ["title", "community", "unit", "status", "validity", "expiring"]
    order_columns = ["title", "valid_from", "valid_to", "status"]
    base_order = ("valid_to", "asc")
    permission_of = {"upload": "edit", "scan": "read"}
    add_form_extra_fields = {"commitments": TextAreaField(
        "承诺事项", default=DEFAULT_COMMITMENTS, widget=BS3TextAreaFieldWidget())}
    edit_form_extra_fields = {"commitments": TextAreaField(
        "承诺事项", widget=BS3TextAreaFieldWidget())}

    def _show(self, pk):
        widgets = super()._show(pk)
        agreement = widgets["agreement"] = self.datamodel.get(pk)
        if agreement is not None:
            widgets["three_ones"] = three_ones(self.datamodel.session, [agreement],
                                               clock.today().year)[agreement.id]
        return widgets

    @expose("/upload/<int:pk>", methods=["GET", "POST"])
    @has_access
    def upload(self, pk):
        """Upload the scanned signed agreement (PDF, JPG or PNG, checked by content)."""
        agreement = self.datamodel.get(pk)
        if agreement is None:
            abort(404)
        if request.method == "POST":
            sent = request.files.get("file")
            try:
                store_agreement_file(self.datamodel.session, agreement,
                                     sent.filename if sent else None, sent.stream if sent else None)
            except DomainError as exc:
                flash(str(exc), "danger")
            else:
                flash("协议扫描件已上传", "success")
                return redirect(url_for(f"{self.endpoint}.show", pk=pk))
        return self.render_template("cobuild/agreement_upload.html", item=agreement, pk=pk,
                                    title=f"上传协议扫描件：{agreement}",
                                    limit=size_text(current_app.config["UPLOAD_MAX_BYTES"]))

    @expose("/scan/<int:pk>")
    @has_access
    def scan(self, pk):
        """Download the scanned agreement: only for those who may read the agreement."""
        agreement = self.datamodel.get(pk)
        found = agreement_file(agreement) if agreement is not None else None
        if found is None:
            abort(404)
        return storage.response(found, agreement.file_name)


class _Printable(EntityView):
    """A registration whose page links to its print-friendly A4 document."""

    show_template = "cobuild/registration_show.html"
    print_template = ""

    def printable(self, pk):
        item = self.datamodel.get(pk)
        if item is None:
            abort(404)
        return render_template(self.print_template, item=item)


class UnitRegistrationView(_Printable):
    model = UnitRegistration
    workflow = UNIT_REGISTRATION_FLOW
    print_template = "cobuild/unit_receipt.html"
    extra_args = {"print_path": "receipt", "print_label": "打印报到回执"}
    list_columns = ["receipt_no", "unit", "community", "registered_on", "status", "confirmed_on"]
    show_columns = ["receipt_no", "unit", "community", "registered_on", "status",
                    "confirmed_on", "cancel_reason", *AUDIT_COLUMNS]
    add_columns = edit_columns = ["unit", "registered_on"]
    search_columns = ["receipt_no", "unit", "community", "status"]
    order_columns = ["receipt_no", "registered_on", "status"]
    base_order = ("registered_on", "desc")
    permission_of = {"receipt": "read"}

    @expose("/receipt/<int:pk>")
    @has_access
    def receipt(self, pk):
        """The printable 报到回执 (A4)."""
        return self.printable(pk)


class MemberRegistrationView(_Printable):
    model = MemberRegistration
    workflow = MEMBER_REGISTRATION_FLOW
    print_template = "cobuild/member_certificate.html"
    extra_args = {"print_path": "certificate", "print_label": "打印报到证"}
    list_columns = ["certificate_no", "member", "community", "group", "registered_on", "status"]
    show_columns = ["certificate_no", "member", "community", "group", "registered_on", "status",
                    "confirmed_on", "transferred_on", "transfer_note", "cancel_reason",
                    *AUDIT_COLUMNS]
    add_columns = edit_columns = ["member", "community", "group", "registered_on"]
    search_columns = ["certificate_no", "member", "community", "status", "served_this_month"]
    order_columns = ["certificate_no", "registered_on", "status"]
    base_order = ("registered_on", "desc")
    permission_of = {"certificate": "read"}

    @expose("/certificate/<int:pk>")
    @has_access
    def certificate(self, pk):
        """The printable 报到证 (A4)."""
        return self.printable(pk)


class ServicePostView(EntityView):
    model = ServicePost
    list_columns = ["name", "community", "category", "skill", "headcount", "claimed", "active"]
    show_columns = ["name", "community", "category", "skill", "headcount", "claimed",
                    "description", "active", *AUDIT_COLUMNS]
    add_columns = edit_columns = ["community", "name", "category", "skill", "headcount",
                                  "description", "active"]
    search_columns = ["name", "community", "category", "active"]
    order_columns = ["name", "headcount", "claimed"]
    base_order = ("name", "asc")


class PostClaimView(EntityView):
    model = PostClaim
    workflow = POST_CLAIM_FLOW
    list_columns = ["member", "post", "claimed_on", "status", "withdrawn_on"]
    show_columns = ["member", "post", "claimed_on", "status", "withdrawn_on", *AUDIT_COLUMNS]
    add_columns = ["member", "post", "claimed_on"]
    edit_columns = ["claimed_on"]
    search_columns = ["member", "post", "status"]
    order_columns = ["claimed_on", "status"]
    base_order = ("claimed_on", "desc")


class ServiceRecordView(EntityView):
    model = ServiceRecord
    workflow = SERVICE_RECORD_FLOW
    list_columns = ["member", "served_on", "hours", "served_what", "status", "certified_on"]
    show_columns = ["member", "served_on", "hours", "served_what", "description", "status",
                    "certified_on", "reject_reason", "revoke_reason", "pay_cycle",
                    *AUDIT_COLUMNS]
    add_columns = edit_columns = ["member", "served_on", "hours", "post", "service_item", "need",
                                  "micro_wish", "description"]
    search_columns = ["member", "post", "status", "served_on"]
    order_columns = ["served_on", "hours", "status"]
    base_order = ("served_on", "desc")


class PointRuleView(EntityView):
    model = PointRule
    list_columns = ["code", "name", "subject", "event", "points_per_event", "points_per_hour",
                    "active"]
    show_columns = add_columns = edit_columns = ["code", "name", "subject", "event",
                                                 "points_per_event", "points_per_hour",
                                                 "description", "active"]
    search_columns = ["code", "name", "subject", "event", "active"]
    order_columns = ["code", "name"]
    base_order = ("code", "asc")


class PointEntryView(EntityView):
    """The ledger is append-only: no add, edit or delete here, for anybody."""

    model = PointEntry
    exclude_route_methods = {"add", "edit", "delete"}
    muldelete = None
    list_columns = ["created_on", "subject_name", "rule", "kind", "delta", "period", "reason"]
    show_columns = ["subject_type", "member", "unit", "rule", "kind", "delta", "period",
                    "reason", "source", "cycle", "community", "created_on"]
    search_columns = ["subject_type", "member", "unit", "rule", "kind", "period"]
    order_columns = ["created_on", "delta", "period"]
    base_order = ("created_on", "desc")


# A preview's page lists at most this many units and as many members (the best first); the
# API's answer has them all.
PREVIEW_ROWS = 200


class StarRatingView(EntityView):
    """Ratings are made by the star-rating run, then reviewed and published."""

    model = StarRating
    workflow = STAR_RATING_FLOW
    exclude_route_methods = {"add", "edit", "delete"}
    muldelete = None
    list_template = "cobuild/star_rating_list.html"
    list_columns = ["subject_name", "period", "score", "stars", "note", "status"]
    show_columns = ["subject_type", "unit", "member", "period", "period_kind", "score",
                    "stars", "eligible", "note", "inputs_text", "thresholds_text", "status",
                    "computed_on", "reviewed_on", "published_on"]
    search_columns = ["subject_type", "unit", "member", "period", "stars", "status"]
    order_columns = ["period", "score", "stars", "status"]
    base_order = ("score", "desc")
    formatters_columns = {"stars": _stars}
    permission_of = {"compute": "compute"}

    @expose("/compute", methods=["GET", "POST"])
    @has_access
    def compute(self):
        """The star-rating run of a period (a quarter, or a year from its quarters): a job
        (app/jobs.py) — on a worker, its page (我的任务); run in the request (no broker), its
        outcome here. 预览 (`preview` in the form) computes and shows, storing nothing."""
        preview = None
        if request.method == "POST" and request.form.get("preview"):
            try:
                preview = preview_ratings(db.session, request.form.get("period", ""))
            except DomainError as exc:
                flash(str(exc), "danger")
        elif request.method == "POST":
            try:
                job = jobs.rate_stars(request.form.get("period", ""), _request_user(),
                                      self.class_permission_name, request.form.get("_token"))
            except DomainError as exc:
                flash(str(exc), "danger")
            else:
                if job.status not in FINISHED:
                    return redirect(url_for("JobView.show", pk=job.id))
                if job.status != JobStatus.DONE:
                    flash(job.message, "danger")
                else:
                    flash(job.message, "success")
                    period = json.loads(job.params)["period"]
                    return redirect(url_for(f"{self.endpoint}.list") + f"?_flt_0_period={period}")
        try:
            weights = rating_weights()
        except DomainError as exc:  # shown on the form; a run or a preview says it again
            weights = None
            flash(str(exc), "danger")
        return self.render_template("cobuild/star_rating_compute.html", title="计算星级评定",
                                    periods=recent_periods(), preview=preview, weights=weights,
                                    inputs=RATING_INPUTS, preview_rows=PREVIEW_ROWS)


def cobuild_summary(kind: str, pk: int):
    """The co-building panel of a unit's or a member's page (a Jinja global): what the viewer
    may see of its registration, agreements, posts, hours, points and stars."""
    model, summary = {"unit": (Unit, unit_summary), "member": (Member, member_summary)}[kind]
    row = db.session.execute(select(model).where(model.id == pk)).scalar_one_or_none()
    return None if row is None else summary(db.session, row)
