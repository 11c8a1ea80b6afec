"""REST resources of co-building, with their workflow moves; the agreement's scanned file and
the star-rating run are served here too."""
import json

from flask import request
from flask_appbuilder import expose
from flask_appbuilder.api import safe
from flask_appbuilder.security.decorators import protect

from app import jobs, storage
from app.errors import DomainError
from app.models.cobuild import (
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
from app.security.principal import _request_user
from app.services.cobuild import (
    AGREEMENT_FLOW,
    MEMBER_REGISTRATION_FLOW,
    POST_CLAIM_FLOW,
    SERVICE_RECORD_FLOW,
    STAR_RATING_FLOW,
    UNIT_REGISTRATION_FLOW,
    agreement_file,
    preview_ratings,
    store_agreement_file,
    three_ones_year,
)
from app.services.cobuild import three_ones as count_three_ones
from app.views.base import EntityApi

STAMPS = ["created_on", "changed_on"]


class AgreementApi(EntityApi):
    model = Agreement
    workflow = AGREEMENT_FLOW
    list_columns = show_columns = [
        "id", "community_id", "unit_id", "title", "signed_on", "valid_from", "valid_to",
        "yearly_target", "commitments", "file_name", "file_type", "file_size",
        "file_uploaded_on", "status", "validity", "expiring", "terminate_reason", "terminated_on", *STAMPS]
    permission_of = {"upload_file": "edit", "download_file": "read", "three_ones": "read"}

    @expose("/<int:pk>/file", methods=["POST"])
    @protect()
    @safe
    def upload_file(self, pk):
        """Upload the scanned signed agreement (multipart field `file`).
        ---
        post:
          parameters:
          - in: path
            schema:
              type: integer
            name: pk
          requestBody:
            content:
              multipart/form-data:
                schema:
                  type: object
                  properties:
                    file:
                      type: string
                      format: binary
          responses:
            200:
              description: The agreement with its file
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      result:
                        type: object
            401:
              $ref: '#/components/responses/401'
            404:
              $ref: '#/components/responses/404'
            422:
              $ref: '#/components/responses/422'
            500:
              $ref: '#/components/responses/500'
        """
        agreement = self.datamodel.get(pk)
        if agreement is None:
            return self.response_404()
        sent = request.files.get("file")
        try:
            store_agreement_file(self.datamodel.session, agreement,
                                 sent.filename if sent else None, sent.stream if sent else None)
        except DomainError as exc:
            return self.response_422(message=str(exc))
        return self.response(200, result=self.show_model_schema.dump(agreement))

    @expose("/<int:pk>/file", methods=["GET"])
    @protect()
    @safe
    def download_file(self, pk):
        """The scanned agreement, for those who may read the agreement.
        ---
        get:
          parameters:
          - in: path
            schema:
              type: integer
            name: pk
          responses:
            200:
              description: The scanned file (PDF or image)
              content:
                application/octet-stream:
                  schema:
                    type: string
                    format: binary
            401:
              $ref: '#/components/responses/401'
            404:
              $ref: '#/components/responses/404'
            500:
              $ref: '#/components/responses/500'
        """
        agreement = self.datamodel.get(pk)
        found = agreement_file(agreement) if agreement is not None else None
        if found is None:
            return self.response_404()
        return storage.response(found, agreement.file_name)


    @expose("/<int:pk>/three_ones", methods=["GET"])
    @protect()
    @safe
    def three_ones(self, pk):
        """The agreement's 三个一 in a year (`?year=2026`, this year when not given), counted
        as on its page: in force, quarters attended of the quarters its unit's bodies met, needs
        closed against the yearly target.
        ---
        get:
          parameters:
          - in: path
            schema:
              type: integer
            name: pk
          - in: query
            schema:
              type: string
            name: year
          responses:
            200:
              description: The 三个一 of the year
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      id:
                        type: integer
                      result:
                        type: object
            401:
              $ref: '#/components/responses/401'
            404:
              $ref: '#/components/responses/404'
            422:
              $ref: '#/components/responses/422'
            500:
              $ref: '#/components/responses/500'
        """
        agreement = self.datamodel.get(pk)
        if agreement is None:
            return self.response_404()
        try:
            year = three_ones_year(request.args.get("year"))
        except DomainError as exc:
            return self.response_422(message=str(exc))
        counted = count_three_ones(self.datamodel.session, [agreement], year)[agreement.id]
        return self.response(200, id=agreement.id, result=counted.as_dict())


class UnitRegistrationApi(EntityApi):
    model = UnitRegistration
    workflow = UNIT_REGISTRATION_FLOW
    list_columns = show_columns = [
        "id", "unit_id", "community_id", "registered_on", "receipt_no", "status",
        "confirmed_on", "cancel_reason", *STAMPS]


class MemberRegistrationApi(EntityApi):
    model = MemberRegistration
    workflow = MEMBER_REGISTRATION_FLOW
    list_columns = show_columns = [
        "id", "member_id", "community_id", "group_id", "registered_on", "certificate_no",
        "status", "confirmed_on", "transferred_on", "transfer_note", "cancel_reason", *STAMPS]


class ServicePostApi(EntityApi):
    model = ServicePost
    list_columns = show_columns = [
        "id", "community_id", "name", "category_id", "skill", "headcount", "claimed",
        "description", "active", *STAMPS]


class PostClaimApi(EntityApi):
    model = PostClaim
    workflow = POST_CLAIM_FLOW
    list_columns = show_columns = ["id", "member_id", "post_id", "claimed_on", "status",
                                   "withdrawn_on", *STAMPS]


class ServiceRecordApi(EntityApi):
    model = ServiceRecord
    workflow = SERVICE_RECORD_FLOW
    list_columns = show_columns = [
        "id", "member_id", "served_on", "hours", "post_id", "service_item_id", "need_id",
        "micro_wish_id", "description", "status", "certified_on", "reject_reason",
        "revoke_reason", "pay_cycle", *STAMPS]


class PointRuleApi(EntityApi):
    model = PointRule
    list_columns = show_columns = ["id", "code", "name", "subject", "event", "points_per_event",
                                   "points_per_hour", "description", "active"]


class PointEntryApi(EntityApi):
    """The ledger, read-only."""

    model = PointEntry
    exclude_route_methods = {"post", "put", "delete"}
    list_columns = show_columns = [
        "id", "subject_type", "member_id", "unit_id", "rule_id", "kind", "delta", "reason",
        "source_type", "source_id", "cycle", "period", "community_id", "operator_id",
        "created_on"]
    # The page's filters (its subtree filter too), and the source a ledger entry came from.
    search_columns = ["subject_type", "member", "unit", "rule", "kind", "period", "within",
                      "source_type", "source_id"]


class StarRatingApi(EntityApi):
    """Ratings come from the run (`POST /api/v1/star_rating/compute`), then are moved."""

    model = StarRating
    workflow = STAR_RATING_FLOW
    exclude_route_methods = {"post", "put", "delete"}
    list_columns = show_columns = [
        "id", "subject_type", "unit_id", "member_id", "period", "period_kind", "score", "stars",
        "eligible", "note", "inputs", "thresholds", "status", "computed_on", "reviewed_on",
        "published_on"]
    permission_of = {"compute": "compute", "preview": "compute"}

    @expose("/preview", methods=["POST"])
    @protect()
    @safe
    def preview(self):
        """A preview of a period's ratings in the user's scope: JSON body {"period": "2026Q4"};
        computed, answered (`"preview": true`), never stored — a period not ended is allowed
        once it has begun. 422 with the message for a period written wrong or bad weights."""
        body = request.get_json(silent=True) or {}
        try:
            done = preview_ratings(self.datamodel.session, str(body.get("period", "")))
        except DomainError as exc:
            return self.response_422(message=str(exc))
        period = done["period"]
        return self.response(200, preview=True, label=f"{period.label}（预览，未保存）",
                             period=period.code, ended=done["ended"], weights=done["weights"],
                             units=done["units"], members=done["members"])

    @expose("/compute", methods=["POST"])
    @protect()
    @safe
    def compute(self):
        """Compute a period's ratings: JSON body {"period": "2026Q1"} (or "2026"), as a job
        (app/jobs.py). On a worker: 202 and the job's URL; run in the request (no broker):
        200 with its message, or 422 with why it failed."""
        body = request.get_json(silent=True) or {}
        return self.job_answer(
            lambda: jobs.rate_stars(str(body.get("period", "")), _request_user(),
                                    self.class_permission_name, body.get("token")),
            lambda job: {"period": json.loads(job.params)["period"], "message": job.message,
                         "ratings": job.done, "job": job.id})
