"""月汇报 on the REST API: the resource, its moves (`/transition/<name>`), its figures and the
job making its documents."""
from flask_appbuilder import expose
from flask_appbuilder.api import safe
from flask_appbuilder.security.decorators import protect

from app.errors import DomainError
from app.models.reports import WorkReport
from app.security.principal import _request_user
from app.services import work_report as service
from app.views.base import EntityApi
from app.views.reports import FORMATS, start_document


class WorkReportApi(EntityApi):
    model = WorkReport
    workflow = service.REPORT_FLOW
    list_columns = show_columns = [
        "id", "org_id", "month", "status", "summary", "problems", "plans", "return_reason",
        "submitted_on", "reviewed_on", "created_on", "changed_on"]
    permission_of = {"figures": "read", "document": "read"}

    @expose("/<int:pk>/figures", methods=["GET"])
    @protect()
    @safe
    def figures(self, pk):
        """The report's figures (frozen once submitted, live before), by figure name.
        ---
        get:
          parameters:
          - in: path
            schema:
              type: integer
            name: pk
          responses:
            200:
              description: The figures, and whether they are frozen
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      frozen:
                        type: boolean
                      figures:
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
        report = self.datamodel.get(pk)
        if report is None:
            return self.response_404()
        return self.response(200, frozen=report.figures is not None,
                             figures=service.figures_of(self.datamodel.session, report))

    @expose("/<int:pk>/document/<fmt>", methods=["POST"])
    @protect()
    @safe
    def document(self, pk, fmt):
        """Start the job making the report's .docx or PDF; its file is at /api/v1/job/<id>.
        ---
        post:
          parameters:
          - in: path
            schema:
              type: integer
            name: pk
          - in: path
            schema:
              type: string
              enum: [docx, pdf]
            name: fmt
          responses:
            202:
              description: The job (run at once without a broker)
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      job:
                        type: integer
                      status:
                        type: string
                      message:
                        type: string
                        nullable: true
            401:
              $ref: '#/components/responses/401'
            404:
              $ref: '#/components/responses/404'
            422:
              $ref: '#/components/responses/422'
            500:
              $ref: '#/components/responses/500'
        """
        report = self.datamodel.get(pk)
        if report is None or fmt not in FORMATS:
            return self.response_404()
        try:
            job = start_document(report, fmt, _request_user())
        except DomainError as exc:
            return self.response_422(message=str(exc))
        return self.response(202, job=job.id, status=job.status, message=job.message)
