"""The base of every business REST resource (FAB's ModelRestApi), sharing with the page
(app/views/entity.py) its scoped interface, permission name, labels and flush: reads scoped,
writes checked at the flush, a business-rule refusal a 422 with its Chinese message, a right
the role lacks a 403, a database that failed a 503."""
from __future__ import annotations

import functools
import sys

import jsonschema
import prison
from flask import request
from flask_appbuilder import ModelRestApi, expose
from flask_appbuilder.api import (
    API_DESCRIPTION_COLUMNS_RIS_KEY,
    API_LABEL_COLUMNS_RIS_KEY,
    API_LIST_COLUMNS_RIS_KEY,
    API_LIST_TITLE_RIS_KEY,
    API_ORDER_COLUMNS_RIS_KEY,
    get_list_schema,
    merge_response_func,
    rison,
    safe,
)
from flask_appbuilder.security.decorators import permission_name, protect
from marshmallow import ValidationError as InvalidValue
from marshmallow import fields
from marshmallow_sqlalchemy.fields import Related, RelatedList
from sqlalchemy import String, func, select
from sqlalchemy.exc import DataError

from app.errors import (
    ID_RANGE,
    NUMBER_OUT_OF_RANGE,
    Conflict,
    DatabaseFailure,
    DomainError,
    database_failure,
)
from app.exports import api_response
from app.security.scope import FieldRefused, related_choices
from app.services.workflow import Forbidden
from app.views.entity import API_PERMISSIONS, EntityBase, directory_view_of, view_of
from app.views.interface import BoundedCount
from app.views.times import LocalDateTime


def _as_text(value):
    """A filter value for a text column: numbers as their text (lists item by item)."""
    if isinstance(value, list):
        return [_as_text(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


class ExistingRelated(Related):
    """A related record named by its id — only an existing one. marshmallow-sqlalchemy would
    build a new row from a JSON object or an unknown id (and fail with a 500 on odd keys): an
    API write must never create the record it points at. (Hostile-input finding, issue #10.)"""

    def _deserialize(self, value, *args, **kwargs):
        key = self.related_keys[0].key
        if isinstance(value, dict) and set(value) == {key}:
            value = value[key]
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidValue("应为关联记录的编号（整数）")
        found = self.session.get(self.related_model, value)
        if found is None:
            raise InvalidValue("关联记录不存在或超出您的数据范围")
        return found


def checked_rison(schema: dict):
    """FAB's `@rison(schema)`: the `q` argument read as rison (or JSON) and checked against
    the schema, with FAB's 400s. FAB's checks it with `jsonschema.validate`, which checks the
    schema itself and builds a validator on every request — a third of an API list's time
    (issue 30): the validator is built once here."""
    validator = jsonschema.validators.validator_for(schema)(schema)
    validator.check_schema(schema)
    loose = rison(schema)  # what FAB answers to a `q` that is neither rison nor JSON

    def decorate(f):
        fab = loose(f)

        @functools.wraps(f)
        def wraps(self, *args, **kwargs):
            value = request.args.get("q")
            try:
                kwargs["rison"] = prison.loads(value) if value else {}
            except prison.decoder.ParserException:
                return fab(self, *args, **kwargs)
            error = jsonschema.exceptions.best_match(validator.iter_errors(kwargs["rison"]))
            if error is not None:
                return self.response_400(
                    message=f"Not a valid rison schema {str(error).split(chr(10), 1)[0]}")
            return f(self, *args, **kwargs)
        return wraps
    return decorate


class EntityApi(EntityBase, ModelRestApi):
    """Base of every business REST resource, sharing the page's permission name. It declares
    its model and what it returns (ids where the page shows names); its writable fields and
    filters are the page's unless it declares its own (`take_from_page`)."""

    operations = API_PERMISSIONS
    kind = "an API"
    allow_browser_login = True
    # Attributes accepted on add (required) and edit, never returned (e.g. 身份证号 in clear).
    write_only_fields: tuple[str, ...] = ()

    @classmethod
    def declare(cls, model) -> None:
        super().declare(model)
        cls.resource_name = model.__tablename__

    def job_answer(self, start, result):
        """The answer to a run started as a job (`start()` returns it): on a worker, 202 and the
        job's URL; run in the request (no broker), 200 with `result(job)`, or 422 with why it
        failed; a job the queue refused 503, an input refused before any job 422."""
        from app.jobs import JobRefused
        from app.models.jobs import FINISHED, JobStatus

        try:
            job = start()
        except JobRefused as exc:
            return self.response(503, message=str(exc))
        except DomainError as exc:
            return self.response_422(message=str(exc))
        if job.status not in FINISHED:
            return self.response(202, job=job.id, status=job.status, url=f"/api/v1/job/{job.id}")
        if job.status != JobStatus.DONE:
            return self.response_422(message=job.message)
        return self.response(200, result=result(job))

    # What an API takes from its page (app/resources.py pairs them) unless it declares its own:
    # the writable fields, and the filters — the page's search form, its subtree filter
    # (`within`) and flags included — so that an API client can narrow a list as the page does.
    FROM_PAGE = ("add_columns", "edit_columns", "search_columns")

    @classmethod
    def take_from_page(cls, page) -> None:
        for name in cls.FROM_PAGE:
            if name not in cls.__dict__ and getattr(page, name, None):
                setattr(cls, name, list(getattr(page, name)))

    @expose("/", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    @checked_rison(get_list_schema)
    @merge_response_func(ModelRestApi.merge_order_columns, API_ORDER_COLUMNS_RIS_KEY)
    @merge_response_func(ModelRestApi.merge_list_label_columns, API_LABEL_COLUMNS_RIS_KEY)
    @merge_response_func(ModelRestApi.merge_description_columns,
                         API_DESCRIPTION_COLUMNS_RIS_KEY)
    @merge_response_func(ModelRestApi.merge_list_columns, API_LIST_COLUMNS_RIS_KEY)
    @merge_response_func(ModelRestApi.merge_list_title, API_LIST_TITLE_RIS_KEY)
    def get_list(self, **kwargs):
        return self.get_list_headless(**kwargs)

    get_list.__doc__ = ModelRestApi.get_list.__doc__  # its OpenAPI description, as FAB's

    def _handle_filters_args(self, rison_args):
        # Rison reads `value:12345` as a number: against a text column PostgreSQL refuses the
        # comparison (varchar = numeric: a 500). A text column is searched with text.
        filters = super()._handle_filters_args(rison_args)
        columns = self.model.__table__.columns
        for i, flt in enumerate(filters.filters):
            column = columns.get(getattr(flt, "column_name", None) or "")
            if column is not None and isinstance(column.type, String):
                filters.values[i] = _as_text(filters.values[i])
        return filters

    def pre_get(self, data):
        item = self.datamodel.session.get(self.model, data["id"])
        if item is not None:
            shown = directory_view_of(self.datamodel.session, item, list(data["result"]))
            data["result"] = {k: v for k, v in data["result"].items() if k in shown}

    def pre_get_list(self, data):
        # A bounded count (app/views/interface.py BoundedCount): the cap, said to be one.
        if isinstance(data.get("count"), BoundedCount):
            data["count"], data["count_capped"] = data["count"].cap, True

    def _init_model_schemas(self):
        super()._init_model_schemas()
        # Instants out with the zone's offset, in as UTC (app/views/times.py).
        for attr in ("list_model_schema", "show_model_schema", "add_model_schema",
                     "edit_model_schema"):
            for schema_field in getattr(self, attr).fields.values():
                if type(schema_field) is fields.DateTime:
                    schema_field.__class__ = LocalDateTime
        for attr, required in (("add_model_schema", True), ("edit_model_schema", False)):
            schema = getattr(self, attr)
            extra = {name: fields.String(required=required, load_only=True)
                     for name in self.write_only_fields}
            if extra:
                base = type(schema)
                # FAB's schema accepts only the names in its Meta.fields: a field declared
                # but not listed there is refused as "Unknown field", so list it too.
                meta = type("Meta", (base.Meta,),
                            {"fields": [*(base.Meta.fields or ()), *extra]})
                setattr(self, attr, type(base.__name__, (base,), {**extra, "Meta": meta})())
            # A missing or empty required field is told in Chinese, by its label.
            for name, schema_field in getattr(self, attr).fields.items():
                related = schema_field.inner if isinstance(schema_field, RelatedList) else schema_field
                if type(related) is Related:
                    related.__class__ = ExistingRelated
                label = str(self.label_columns.get(name, name))
                schema_field.error_messages = {**schema_field.error_messages,
                                               "required": f"请填写{label}",
                                               "null": f"{label}不能为空"}

    def _get_list_related_field(self, field, filter_rel_field, page=None, page_size=None):
        """`_info`'s choices for a related field: the same ones the form offers."""
        stmt = related_choices(self.model, field.name)
        target = stmt.column_descriptions[0]["entity"]
        page, page_size = self._sanitize_page_args(page, page_size)
        if page * page_size not in ID_RANGE:  # an offset no database takes (MariaDB: a syntax error)
            page = ID_RANGE.stop // page_size - 1
        session = self.datamodel.session
        count = session.execute(select(func.count()).select_from(stmt.subquery())).scalar()
        rows = session.execute(stmt.order_by(target.id).offset(page * page_size)
                               .limit(page_size)).scalars()
        return count, [{"id": row.id, "value": str(row)} for row in rows]

    def response_500(self, message=None):
        # FAB's @safe turns every exception of an endpoint into a 500 "Fatal error"; a database
        # that failed under the request (full, read-only, restarting) is told as such (503).
        exc = sys.exc_info()[1]
        told = database_failure(exc)
        if told is not None:
            return self.response(503, message=told)  # rolled back at teardown (app/errors.py)
        if isinstance(exc, OverflowError):  # a number no database column holds (app/errors.py)
            self.datamodel.session.rollback()
            return self.response_400(message=NUMBER_OUT_OF_RANGE)
        return super().response_500(message)

    def _refusing(self, handler, *args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except (DomainError, UnicodeEncodeError, OverflowError, DataError) as exc:
            self.datamodel.session.rollback()
            if isinstance(exc, DatabaseFailure):
                return self.response(503, message=str(exc))
            if isinstance(exc, FieldRefused):  # a field the role may not change: a right it lacks
                return self.response(403, message=str(exc))
            if isinstance(exc, DomainError):
                return self.response_422(message=str(exc))
            if isinstance(exc, UnicodeEncodeError):  # JSON may carry lone surrogates ("\ud800")
                return self.response_422(message="内容含有无法保存的字符（孤立的代理字符），请检查后重试")
            # OverflowError, DataError: a JSON integer past the column's range
            return self.response_422(message=NUMBER_OUT_OF_RANGE)

    def post_headless(self):
        return self._refusing(super().post_headless)

    def put_headless(self, pk):
        return self._refusing(super().put_headless, pk)

    @expose("/<int:pk>/transition/<name>", methods=["POST"])
    @protect()
    @safe
    @permission_name("transition")
    def transition(self, pk, name):
        """Make a workflow move; the JSON body carries the move's fields.
        ---
        post:
          description: >-
            Make a workflow move (提交、审核、派单…) on the row; the body carries the move's fields
          parameters:
          - in: path
            schema:
              type: integer
            name: pk
          - in: path
            schema:
              type: string
            name: name
          requestBody:
            required: false
            content:
              application/json:
                schema:
                  type: object
          responses:
            200:
              description: The row after the move
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      result:
                        type: object
            401:
              $ref: '#/components/responses/401'
            403:
              $ref: '#/components/responses/403'
            404:
              $ref: '#/components/responses/404'
            409:
              description: Someone else moved the row first
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      message:
                        type: string
            422:
              $ref: '#/components/responses/422'
            500:
              $ref: '#/components/responses/500'
        """
        item = self.datamodel.get(pk)
        workflow = getattr(self, "workflow", None)
        if item is None or workflow is None or name not in workflow.by_name:
            return self.response_404()
        try:
            workflow.run(self.datamodel.session, item, name, request.get_json(silent=True) or {})
        except Forbidden as exc:
            return self.response(403, message=str(exc))
        except DatabaseFailure as exc:
            return self.response(503, message=str(exc))
        except Conflict as exc:
            return self.response(409, message=str(exc))
        except DomainError as exc:
            return self.response_422(message=str(exc))
        return self.response(200, result=self.show_model_schema.dump(item))

    @expose("/export/<fmt>", methods=["GET"])
    @protect()
    @safe
    @permission_name("export")
    @rison(get_list_schema)
    def export(self, fmt, **kwargs):
        """All rows the list would give for the same `q`, as CSV or Excel (app/exports.py).
        ---
        get:
          description: >-
            Every row the list would give for the same `q`, as CSV (UTF-8 with BOM) or Excel
          parameters:
          - in: path
            schema:
              type: string
              enum: [csv, xlsx]
            name: fmt
          - in: query
            name: q
            content:
              application/json:
                schema:
                  $ref: '#/components/schemas/get_list_schema'
          responses:
            200:
              description: The rows as a download
              content:
                text/csv:
                  schema:
                    type: string
                application/vnd.openxmlformats-officedocument.spreadsheetml.sheet:
                  schema:
                    type: string
                    format: binary
            400:
              $ref: '#/components/responses/400'
            401:
              $ref: '#/components/responses/401'
            403:
              $ref: '#/components/responses/403'
            404:
              $ref: '#/components/responses/404'
            422:
              $ref: '#/components/responses/422'
            500:
              $ref: '#/components/responses/500'
        """
        return api_response(self, view_of(self.class_permission_name), fmt, kwargs["rison"])

    def delete_headless(self, pk):
        return self._refusing(super().delete_headless, pk)
