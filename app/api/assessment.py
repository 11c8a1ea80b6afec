"""年度考核 on the REST API: the indicator set (with `PUT /weights`, a level's weights in one
save), the results and their moves (`/transition/<name>`), the computation as a job and the
preview."""
import json

from flask import request
from flask_appbuilder import expose
from flask_appbuilder.api import safe
from flask_appbuilder.security.decorators import protect

from app import jobs
from app.errors import DomainError
from app.models.assessment import Assessment, AssessmentIndicator
from app.security.principal import _request_user
from app.services import assessment as service
from app.views.base import EntityApi


class AssessmentIndicatorApi(EntityApi):
    model = AssessmentIndicator
    list_columns = show_columns = ["id", "level", "order", "name", "code", "weight", "target",
                                   "description"]
    add_columns = ["level", "order", "name", "code", "weight", "target", "description"]
    edit_columns = ["order", "name", "code", "weight", "target", "description"]
    permission_of = {"weights": "edit"}

    @expose("/weights", methods=["PUT"])
    @protect()
    @safe
    def weights(self):
        """A level's weights in one save: JSON body {"level": "community", "weights": {"<id>":
        15, …}}; their sum must be 100, else 422 and nothing saved.
        ---
        put:
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    level:
                      type: string
                    weights:
                      type: object
          responses:
            200:
              description: The rows changed
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      changed:
                        type: integer
            401:
              $ref: '#/components/responses/401'
            422:
              $ref: '#/components/responses/422'
            500:
              $ref: '#/components/responses/500'
        """
        body = request.get_json(silent=True) or {}
        given = body.get("weights")
        if not isinstance(given, dict):
            return self.response_422(message="请以 weights 给出各指标的权重")
        try:
            changed = service.set_weights(self.datamodel.session, body.get("level"), given)
        except DomainError as exc:
            return self.response_422(message=str(exc))
        return self.response(200, changed=changed)

class AssessmentApi(EntityApi):
    """Results come from the computation (`POST /api/v1/assessment/compute`), then are moved."""

    model = Assessment
    workflow = service.ASSESSMENT_FLOW
    exclude_route_methods = {"post", "put", "delete"}
    list_columns = show_columns = [
        "id", "year", "level", "community_id", "unit_id", "computed_score", "adjustment",
        "adjustment_reason", "total", "rank", "scores", "status", "computed_on", "reviewed_on",
        "published_on"]
    permission_of = {"compute": "compute", "preview": "compute"}

    @expose("/preview", methods=["POST"])
    @protect()
    @safe
    def preview(self):
        """A year's assessment computed and answered, never stored (a year not ended too, once
        begun): JSON body {"year": 2026, "level": "community"}.
        ---
        post:
          responses:
            200:
              description: The subjects ranked, with their indicators
              content:
                application/json:
                  schema:
                    type: object
            401:
              $ref: '#/components/responses/401'
            422:
              $ref: '#/components/responses/422'
            500:
              $ref: '#/components/responses/500'
        """
        body = request.get_json(silent=True) or {}
        try:
            done = service.preview(self.datamodel.session, body.get("year"), body.get("level"))
        except DomainError as exc:
            return self.response_422(message=str(exc))
        return self.response(200, preview=True, **done)

    @expose("/compute", methods=["POST"])
    @protect()
    @safe
    def compute(self):
        """Compute a year's assessment: JSON body {"year": 2025, "level": "unit"}, as a job. On
        a worker: 202 and the job's URL; run in the request (no broker): 200 with its message,
        or 422 with why it failed.
        ---
        post:
          responses:
            200:
              description: Computed
              content:
                application/json:
                  schema:
                    type: object
            202:
              description: The job, queued
              content:
                application/json:
                  schema:
                    type: object
            401:
              $ref: '#/components/responses/401'
            422:
              $ref: '#/components/responses/422'
            500:
              $ref: '#/components/responses/500'
        """
        body = request.get_json(silent=True) or {}

        def result(job):
            params = json.loads(job.params)
            return {"year": params["year"], "level": params["level"], "message": job.message,
                    "job": job.id}
        return self.job_answer(
            lambda: jobs.assess(body.get("year"), body.get("level"), _request_user(),
                                self.class_permission_name, body.get("token")), result)
