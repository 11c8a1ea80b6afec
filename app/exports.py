"""Data out: every list as CSV or Excel, exactly the rows and the order the user was looking at.

The rows come from the same scoped query as the list page (its filter and order arguments),
streamed in chunks so memory stays flat however many rows; CSV starts at once. Cells are
written as the user sees them: Chinese labels for codes, ISO dates, personal data as the
viewer's role may see it. Text that a spreadsheet would take for a formula is neutralised.
Each export leaves one audit record (who, what, filters, how many rows). The REST API's export
takes the API list's own `q` instead of the page's arguments, and writes the same file.
"""
from __future__ import annotations

import csv
import io
import tempfile
from datetime import date, datetime
from decimal import Decimal

from flask import Response, current_app, request, stream_with_context
from flask_appbuilder.exceptions import FABException, InvalidOrderByColumnFABException
from markupsafe import Markup
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from app.extensions import db
from app.services import audit

CHUNK = 500
# A text cell starting with one of these is a formula to Excel or WPS (DDE and friends).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """Prefix formula-like text with an apostrophe; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def cell_value(value):
    """A Python value as a spreadsheet cell: text, a number, an ISO date, 是/否."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple, set)) or hasattr(value, "__iter__") and not isinstance(value, str):
        return "、".join(str(v) for v in value)
    if isinstance(value, Markup):
        return value.striptags()
    return str(value)


class Export:
    """What one export writes: the view's columns, labels and formatters, and its query."""

    def __init__(self, view, query, columns: list[str], english_keys: bool = False):
        self.view, self.query, self.columns = view, query, columns
        self.headers = columns if english_keys else [str(view.label_columns.get(c, c))
                                                     for c in columns]
        self.count = 0

    def rows(self):
        formatters = self.view.formatters_columns
        try:
            for item in _in_chunks(self.query):
                row = []
                for column in self.columns:
                    value = getattr(item, column, None)
                    if column in formatters:
                        value = formatters[column](value)
                    row.append(cell_value(value))
                self.count += 1
                yield row
        finally:
            # A streamed response outlives its request's session scope: end the read here,
            # or its connection (and, on SQLite, its lock) would stay open.
            self.query.session.close()


def _in_chunks(query):
    """The query's rows, CHUNK at a time, never all in memory."""
    if query.session.get_bind().dialect.name != "mysql":
        yield from query.yield_per(CHUNK)
        return
    # PyMySQL drops the rest of a server-side cursor when its connection runs the next statement
    # (the related rows of a chunk): an export stopped at its first chunk. MariaDB pages instead,
    # in the query's total order (query_for ends it with the id), in one transaction's snapshot.
    offset = 0
    while True:
        rows = query.limit(CHUNK).offset(offset).all()
        yield from rows
        if len(rows) < CHUNK:
            return
        offset += CHUNK


def query_for(view, filters, order_column: str, order_direction: str):
    """The list page's query: its filters and order (or the view's default order), with the
    related rows the columns show loaded in bulk rather than one by one."""
    datamodel = view.datamodel
    model = datamodel.obj
    if not order_column and view.base_order:
        order_column, order_direction = view.base_order
    query = datamodel.session.query(model).options(
        *datamodel.eager_loads(datamodel.relations_shown_by(view.export_columns)))
    query = datamodel.apply_all(query, filters, order_column, order_direction)
    return query.order_by(model.id)


def _record(view, fmt: str, filters: dict, count: int) -> None:
    audit.record(db.session, "export", view.class_permission_name,
                 changes={"format": fmt, "filters": filters, "rows": count})
    db.session.commit()


def csv_response(view, export: Export, filters: dict, encoding: str = "utf-8-sig") -> Response:
    """Stream a CSV; UTF-8 with BOM opens in Excel with Chinese intact (GB18030 on request)."""
    # Recorded before the first byte: a write after streaming would wait on the read the
    # stream holds open (SQLite locks the file). The count is the same query's.
    _record(view, "csv", filters, export.query.order_by(None).count())

    def generate():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(export.headers)
        for n, row in enumerate(export.rows(), start=1):
            writer.writerow([neutralise(v) for v in row])
            if n % CHUNK == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    def encoded():
        first = True
        for text in generate():
            if first and encoding == "utf-8-sig":
                yield "\ufeff".encode("utf-8")
            first = False
            yield text.encode("utf-8" if encoding == "utf-8-sig" else encoding, errors="replace")

    name = f"{view.class_permission_name}-{date.today():%Y%m%d}.csv"
    charset = "utf-8" if encoding == "utf-8-sig" else encoding
    return Response(stream_with_context(encoded()), mimetype=f"text/csv; charset={charset}",
                    headers={"Content-Disposition": f"attachment; filename={name}"})


class TooManyRows(Exception):
    pass


def xlsx_response(view, export: Export, filters: dict) -> Response:
    """An Excel file from a write-only workbook (rows are not kept in memory), capped."""
    cap = current_app.config["EXPORT_XLSX_MAX_ROWS"]
    too_many = TooManyRows(f"Excel 导出最多 {cap} 行，请缩小筛选范围或改用 CSV 导出")
    # Refused before any work: a workbook given up half-written leaves its temporary file.
    if export.query.order_by(None).count() > cap:
        raise too_many
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(str(view.list_title)[:31] or "数据")
    sheet.append(export.headers)
    for row in export.rows():
        if export.count > cap:  # rows added since the count
            raise too_many
        cells = []
        for value in row:
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # text stays text: "=…" is never a formula here
            cells.append(cell)
        sheet.append(cells)
    spool = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)
    workbook.save(spool)
    size = spool.tell()
    spool.seek(0)
    _record(view, "xlsx", filters, export.count)
    name = f"{view.class_permission_name}-{date.today():%Y%m%d}.xlsx"

    def stream():
        while chunk := spool.read(256 * 1024):
            yield chunk
        spool.close()

    return Response(stream(), headers={"Content-Disposition": f"attachment; filename={name}",
                                       "Content-Length": str(size)},
                    mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


# --- the same export on the REST API ---------------------------------------------------------

def entity_view(resource: str):
    """The list view of a resource: its columns, labels and formatters make the file, whichever
    way it is asked for."""
    from app.views.base import EntityView

    for view in current_app.appbuilder.baseviews:
        if isinstance(view, EntityView) and view.class_permission_name == resource:
            return view
    return None


def api_response(api, fmt: str, args: dict) -> Response:
    """`GET /api/v1/<resource>/export/csv|xlsx?q=…`: every row `GET /api/v1/<resource>/?q=…`
    lists (its filters and order, all pages), written as the list page's export writes it —
    same columns, masking, audit record (`?headers=keys`, `?encoding=gb18030` likewise)."""
    view = entity_view(api.class_permission_name)
    if fmt not in ("csv", "xlsx") or view is None or not view.export_columns:
        return api.response_404()
    try:
        filters = api._handle_filters_args(args)
        order = api._handle_order_args(args)
    except InvalidOrderByColumnFABException:
        return api.response_400(message=f"不能按“{args.get('order_column')}”排序")
    except FABException as exc:
        return api.response_400(message=f"筛选条件无效：只能按可筛选的列及其支持的方式筛选（{exc}）")
    export = Export(view, query_for(view, filters, *order), view.export_columns,
                    english_keys=request.args.get("headers") == "keys")
    described = {"api": True, "q": request.args.get("q", "")}
    try:
        if fmt == "csv":
            encoding = "gb18030" if request.args.get("encoding") == "gb18030" else "utf-8-sig"
            return csv_response(view, export, described, encoding)
        return xlsx_response(view, export, described)
    except TooManyRows as exc:
        return api.response_422(message=str(exc))
