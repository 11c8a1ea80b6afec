"""Data out: every list as CSV or Excel, exactly the rows and the order the user was looking at.

The rows come from the same scoped query as the list page (its filter and order arguments),
streamed in chunks so memory stays flat however many rows; CSV starts at once (on PostgreSQL
once COPY has written it to a spooled file). Cells are written as the user sees them: Chinese
labels for codes, ISO dates, personal data as the viewer's role may see it, every cell quoted.
A CSV's text cells are written so that Excel, WPS and LibreOffice, opening the file with their
default options, show the text the panel holds (`neutralise`). Where every column has a SQL
form, the database makes the cells (see "CSV rendered by the database" below).
Each export leaves one audit record (who, what, filters, how many rows). The REST API's export
takes the API list's own `q` instead of the page's arguments, and writes the same file.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
import tempfile
from datetime import date, datetime
from decimal import Decimal

from flask import Response, current_app, request, stream_with_context
from flask_appbuilder.exceptions import FABException, InvalidOrderByColumnFABException
from flask_babel import gettext
from markupsafe import Markup
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    Numeric,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    type_coerce,
)

from app import clock, jobs
from app.errors import DomainError
from app.extensions import db
from app.security import busy
from app.security.scope import read_criteria
from app.services import audit
from app.spreadsheet import FORMULA_STARTS, FORMULA_TEXT_MAX, neutralise

CHUNK = 500
def cell_value(value):
    """A Python value as a spreadsheet cell: text, a number, an ISO date, 是/否."""
    if type(value) is str:  # most cells: first
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return clock.local_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple, set)) or hasattr(value, "__iter__") and not isinstance(value, str):
        return "、".join(str(v) for v in value)
    if isinstance(value, Markup):
        return value.striptags()
    return str(value)


def excel_value(value):
    """`cell_value` for an .xlsx cell: dates and date-times stay date cells (on the zone's wall
    clock: Excel has no zones), so that the spreadsheet sorts and filters them as dates."""
    if isinstance(value, datetime):
        return clock.to_local(value).replace(microsecond=0)
    if isinstance(value, date):
        return value
    text = cell_value(value)
    # A worksheet cannot hold control characters other than tab and line breaks (openpyxl
    # refuses the cell): they are left out of the cell rather than failing the whole file.
    return ILLEGAL_CHARACTERS_RE.sub("", text) if type(text) is str else text


class Export:
    """What one export writes: the view's columns, labels and formatters, and its query."""

    def __init__(self, view, query, columns: list[str], english_keys: bool = False):
        self.view, self.query, self.columns = view, query, columns
        self.headers = columns if english_keys else [str(view.label_columns.get(c, c))
                                                     for c in columns]
        self.count = 0

    def rows(self, cell=cell_value):
        """The cells of each row, made in Python from the row and the related rows its columns
        show (loaded in bulk, a chunk at a time), each by `cell`."""
        datamodel = self.view.datamodel
        query = self.query.options(*datamodel.eager_loads(datamodel.relations_shown_by(self.columns)))
        formatters = self.view.formatters_columns
        cells = [(column, _remembered(formatters[column]) if column in formatters else None)
                 for column in self.columns]
        try:
            for item in _in_chunks(query):
                row = []
                for column, formatter in cells:
                    value = getattr(item, column, None)
                    row.append(cell(value if formatter is None else formatter(value)))
                self.count += 1
                yield row
        finally:
            # A streamed response outlives its request's session scope: end the read here,
            # or its connection (and, on SQLite, its lock) would stay open.
            self.query.session.close()

    def csv_text(self):
        """The CSV after its header, in pieces of about CHUNK rows: rendered by the database
        when it can, else the rows' cells written by Python."""
        model, session = self.view.datamodel.obj, self.query.session
        dialect = session.get_bind().dialect.name
        related = Related(model)
        cells = _cells_sql(self.view, self.columns, dialect, related)
        # Joined from the mapped entity, which stays in FROM: what the scope's criteria apply to.
        query = related.joined(self.query)
        try:
            if cells is None:
                buffer = io.StringIO()
                writer = csv_writer(buffer)
                for n, row in enumerate(self.rows(), start=1):
                    writer.writerow([neutralise(v) for v in row])
                    if n % CHUNK == 0:
                        yield buffer.getvalue()
                        buffer.seek(0)
                        buffer.truncate()
                yield buffer.getvalue()
            elif dialect == "postgresql":
                texts = [_neutralised(cell) if text else cell for cell, text in cells]
                copied = _copied(session, query.with_entities(*_coalesced(texts)).statement
                                 .select_from(model))
                self.count = next(copied)
                yield from copied
            else:
                yield from self._written(session, query, cells, dialect)
        finally:
            session.close()

    def _written(self, session, query, cells, dialect):
        """The cells the database made, written by Python's csv module (C) — SQLite writes the
        lines themselves (`_lines`) — the marks of `neutralise` only on the chunks that hold a
        text cell needing one (`_MARKED`), found in the chunk's text: the common chunk is
        written once and searched once."""
        model = self.view.datamodel.obj
        texts = [text for _, text in cells]
        buffer = io.StringIO()
        writer = csv_writer(buffer)
        if dialect == "sqlite":
            yield from self._lines(session, query, cells, texts, writer, buffer)
            return
        # MariaDB pages (`_in_chunks`); the entity's id keeps it in FROM
        chunks = _chunked(_in_chunks(query.with_entities(
            *_coalesced([cell for cell, _ in cells]), model.id)), len(cells))
        for chunk in chunks:
            writer.writerows(chunk)
            piece = buffer.getvalue()
            if _MARKED.search(piece):
                buffer.seek(0)
                buffer.truncate()
                writer.writerows([[neutralise(v) if text else v for v, text in zip(row, texts)]
                                  for row in chunk])
                piece = buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            self.count += len(chunk)
            yield piece

    def _lines(self, session, query, cells, texts, writer, buffer):
        """SQLite writes each line's text itself (`_line`): one string a row off the DBAPI
        cursor, not twelve to make and write with the csv module — read as the UTF-8 bytes
        SQLite holds (`csv_chunks` passes bytes on as they are), not made a str each to be
        encoded again. A chunk holding a text that `neutralise` might mark is read back into
        its cells and written as `_written` writes."""
        model = self.view.datamodel.obj
        driver = session.connection().connection.driver_connection
        factory, driver.text_factory = driver.text_factory, bytes  # for this statement only
        try:
            rows = _scoped_rows(session, query.with_entities(_line(cells)).statement
                                .select_from(model))
            for chunk in iter(lambda: rows.fetchmany(CHUNK), []):
                piece = b"".join([row[0] for row in chunk])
                if _MARKED_BYTES.search(piece):
                    lines = io.StringIO(piece.decode("utf-8"), newline="")
                    writer.writerows([[neutralise(v) if text else v for v, text in zip(row, texts)]
                                      for row in csv.reader(lines)])
                    piece = buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
                self.count += len(chunk)
                yield piece
        finally:
            driver.text_factory = factory  # before the connection goes back to the pool


def _line(cells):
    """A CSV line in SQL, as `csv_writer` writes it: every cell quoted, its quotes doubled,
    "\n" after the line. One printf() makes the line: its %s writes a NULL as an empty cell,
    so no coalesce() and no chain of || (a function call each, per cell and row). Only a text
    cell can hold a quote (`cells`' flag): dates and numbers are written without replace()."""
    quoted = [func.replace(type_coerce(cell, String), '"', '""', type_=String) if text
              else type_coerce(cell, String) for cell, text in cells]
    # A function takes at most 127 arguments in SQLite (the widest export has 36 columns):
    # a wider line is made by several printf()s, joined.
    groups = [quoted[start:start + 100] for start in range(0, len(quoted), 100)]
    line = None
    for n, group in enumerate(groups):
        form = ("," if n else "") + ",".join(['"%s"'] * len(group)) + \
            ("\n" if n == len(groups) - 1 else "")
        piece = func.printf(literal(form, String), *group, type_=String)
        line = piece if line is None else line + piece
    return line


# A CSV field that `neutralise` might mark: its opening quote (every field is quoted:
# csv.QUOTE_ALL) before a formula's first character, or before all digits with a leading zero
# or more than ten of them. Searched in a chunk's text for that quote alone (a quote is only
# ever a field's opening or closing one, or one of a doubled pair inside it): a match that is
# not a field's start only costs its chunk a second writing.
_MARKED = re.compile(r'"(?:[=+\-@\t\r]|0[0-9]+"|[0-9]{11,}")')
_MARKED_BYTES = re.compile(_MARKED.pattern.encode())


def _chunked(rows, width: int):
    """Rows (their first `width` cells) in lists of CHUNK."""
    chunk = []
    for row in rows:
        chunk.append(row[:width])
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def csv_writer(buffer):
    """The export's CSV dialect, for its header and its Python-made lines alike: every cell
    quoted and "\n" after each line, as PostgreSQL's COPY writes its lines."""
    return csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")


def _remembered(formatter, size: int = 1024):
    """A column's formatter asked once per distinct value (a status label is translated once
    per export, not once per row); values that cannot be remembered are formatted each time."""
    seen = {}

    def format_(value):
        try:
            return seen[value]
        except KeyError:
            result = formatter(value)
            if len(seen) < size:
                seen[value] = result
            return result
        except TypeError:  # unhashable
            return formatter(value)
    return format_


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
    """The list page's query: its filters and order (or the view's default order), then the
    id, so that every way of reading it (chunks, pages) sees one total order."""
    datamodel = view.datamodel
    model = datamodel.obj
    if not order_column and view.base_order:
        order_column, order_direction = view.base_order
    query = datamodel.apply_all(datamodel.session.query(model), filters, order_column,
                                order_direction)
    return query.order_by(model.id)


def _record(view, fmt: str, filters: dict, count: int, export: Export | None = None) -> None:
    """The export's record, with the reveal of the personal data it shows in full (before a
    CSV's first row, from its query; an Excel file's, noted while it was made)."""
    from app.security import personal_data

    def add(session):
        audit.record(session, "export", view.class_permission_name,
                     changes={"format": fmt, "filters": filters, "rows": count})
        if export is not None:
            personal_data.record_export(session, export)
        else:
            personal_data.record_noted(session)

    busy.write_retrying(db.session, add)


# --- CSV rendered by the database -------------------------------------------------------------
# Python makes some 20,000 rows a second (an ORM row, the related rows it shows, a formatter per
# cell); the database's own CSV writers make ten to forty times that. So a CSV export whose every
# column has a SQL form has the database make each cell's text, in the very text the Python path
# writes (tests/test_exports_sql.py compares the two files byte for byte on every database):
# PostgreSQL writes the whole CSV (COPY, `neutralise` in SQL); SQLite each line's text, and
# MariaDB the cells as Core rows that Python's csv module writes; both marking only the chunks
# that need a mark (`Export._written`) — `neutralise` in SQL repeats each cell's expression in every test of
# its CASE, which SQLite evaluates each time: it cost as much as making the cells. Anything
# else — a masked column, a list of related rows, a formatter of the view's own — takes the
# Python path, whole.

class Related:
    """The related rows an export's lines show, each read through one outer join on an alias
    of the target's Core table: the row whatever its scope (the row pointing at it is in
    scope), none when deleted — what a relationship load shows."""

    def __init__(self, model):
        self.model, self.joins = model, {}

    def caption(self, relation: str):
        """The caption of the row `model.relation` points at (NULL for none), or None when
        only Python can say it."""
        prop = self.model.__mapper__.relationships[relation]
        target = prop.mapper.class_
        if prop.direction.name != "MANYTOONE" or len(prop.local_remote_pairs) != 1 \
                or getattr(target, "__caption_sql__", None) is None:
            return None
        if relation not in self.joins:
            (local, remote), = prop.local_remote_pairs
            table = target.__table__.alias()  # an alias: a parent is a row of the same table
            self.joins[relation] = (table, and_(table.c[remote.key] == local,
                                                table.c.deleted_on.is_(None)))
        table = self.joins[relation][0]
        caption = target.__caption_sql__(table)
        return None if caption is None else case((table.c.id.is_not(None), caption))

    def joined(self, query):
        for table, on in self.joins.values():
            query = query.outerjoin(table, on)
        return query


def _neutralised(text):
    """`neutralise` in SQL (PostgreSQL's COPY). Its tests run only on a text whose first
    character could need a mark (a formula's, or a digit): PostgreSQL evaluates an expression
    each time it is written, and the cells' expressions (a caption, a label) were evaluated
    once per test — `ascii()` of the first character is one cheap test for the common cell."""
    text = type_coerce(text, String)
    first = func.ascii(text)
    return case((or_(first.in_([ord(c) for c in FORMULA_STARTS]), first.between(48, 57)),
                 _marked(text)), else_=text)


def _marked(text):
    """`neutralise` of a text that starts with a formula's character or a digit."""
    digits = text.regexp_match("^[0-9]+$")
    length = func.length(text)
    quote = literal('"', String)
    as_formula = literal('="', String) + func.replace(text, quote, literal('""', String)) + quote
    formula_like = func.substr(text, 1, 1).in_(FORMULA_STARTS)
    return case(
        (and_(digits, or_(length > 10, and_(length > 1, func.substr(text, 1, 1) == "0"))),
         as_formula),
        (and_(formula_like, length <= FORMULA_TEXT_MAX, ~text.contains("\n"),
              ~text.contains("\r")), as_formula),
        (formula_like, literal("'", String) + text),
        else_=text)


# cell_value's dates as MariaDB writes them (SQLite and PostgreSQL: their ISO text, _cell_sql).
_DATE_FORMATS = {"mysql": (func.date_format, "%Y-%m-%d", "%Y-%m-%d %H:%i:%s")}
_DATE_FORMATS["mariadb"] = _DATE_FORMATS["mysql"]


def _shifted(value, seconds: int, dialect: str):
    """A stored date-time moved by `seconds`, in the database's own arithmetic."""
    if dialect == "sqlite":  # ISO text: whole seconds (datetime() of a fraction may round up)
        return func.datetime(func.substr(value, 1, 19), f"{seconds:+d} seconds")
    if dialect == "postgresql":
        return value + literal_column(f"interval '{seconds} seconds'")
    return func.date_add(value, literal_column(f"INTERVAL {seconds} SECOND"))


def _cell_sql(view, column: str, dialect: str, related: Related):
    """One cell's text in SQL, as `cell_value` writes it, and whether it is text that
    `neutralise` may mark (names, labels, captions: not dates or numbers); None when only
    Python can make it."""
    model = view.datamodel.obj
    # Not .get(): a page's formatters give every column a default one (views PageFormatters).
    formatter = view.formatters_columns[column] if column in view.formatters_columns else None  # noqa: SIM401
    choices = getattr(formatter, "choices", None)
    if formatter is not None and choices is None:
        return None
    computed = getattr(model, "__sql_columns__", {}).get(column)
    if computed is not None:
        return computed(related.caption), True
    if column in model.__mapper__.relationships:
        caption = related.caption(column)
        return None if caption is None else (caption, True)
    if column not in model.__table__.c:  # a property: Python
        return None
    value, kind = getattr(model, column), model.__table__.c[column].type
    if choices is not None:
        return case({code: str(gettext(label)) for code, label in choices.items()},
                    value=value, else_=value), True
    if isinstance(kind, Boolean):
        return case((value.is_(None), None), (value, "是"), else_="否"), False
    if isinstance(kind, DateTime):
        # An instant is written on the zone's wall clock: shifted by the zone's offset, where it
        # is one offset for every stored value (else Python converts each, cell_value).
        offset = clock.fixed_offset()
        if offset is None:
            return None
        value = _shifted(value, int(offset.total_seconds()), dialect)
        if dialect == "sqlite":  # datetime()'s text is the seconds' ISO text: no substr() of it
            return value, False
    if isinstance(kind, (Date, DateTime)):
        length = 19 if isinstance(kind, DateTime) else 10
        if dialect == "sqlite":  # stored as ISO text
            return func.substr(value, 1, length), False
        if dialect == "postgresql":
            # The ISO text of a cast (`_copied` sets DateStyle ISO) up to the seconds: the text
            # to_char writes, cheaper: four such columns of 2M service records, 2.9 s of 13.9.
            return func.left(cast(value, String), length), False
        function, *formats = _DATE_FORMATS[dialect]
        return function(value, formats[length == 19]), False
    if isinstance(kind, Numeric) and not isinstance(kind, Float):
        # cell_value writes float(Decimal): "3.0", "12.5" — the text of a one-decimal column.
        if kind.scale != 1:
            return None
        return (func.printf("%.1f", value) if dialect == "sqlite" else cast(value, String)), False
    if isinstance(kind, Integer):
        return cast(value, String), False
    if isinstance(kind, String):  # Text too
        return value, True
    return None


def _cells_sql(view, columns: list[str], dialect: str, related: Related):
    """Each cell of a row in SQL with whether `neutralise` may mark it (`_cell_sql`), or None
    when one of them only Python can make."""
    cells = []
    for column in columns:
        cell = _cell_sql(view, column, dialect, related)
        if cell is None:
            return None
        cells.append(cell)
    return cells


def _coalesced(cells):
    """Cells as text, empty for none."""
    return [func.coalesce(type_coerce(cell, String), "") for cell in cells]


def _scoped(statement):
    """A statement the session does not run itself, with the scope's criteria the session
    would give it."""
    return statement.options(*read_criteria(statement))


def _scoped_rows(session, statement):
    """The rows of `statement` (scoped) as the DBAPI cursor gives them, in the session's
    transaction: Core rows, no ORM loading."""
    return session.connection().execute(_scoped(statement))


def _copied(session, statement):
    """PostgreSQL writes the CSV itself (COPY … TO STDOUT, every cell quoted): into a temporary
    file — psycopg2's COPY writes to a file, it does not iterate — then read out in pieces of
    UTF-8 bytes (the client encoding), passed on as they are. psycopg2 calls the file's
    `write` once per row: a plain temporary file's is C, a spooled file's a Python method
    that cost 2M rows three seconds."""
    compiled = _scoped(statement).compile(dialect=session.get_bind().dialect,
                                          compile_kwargs={"render_postcompile": True})
    with session.connection().connection.cursor() as cursor, tempfile.TemporaryFile() as spool:
        sql = cursor.mogrify(compiled.string, compiled.params).decode()  # the driver quotes
        cursor.execute("SET LOCAL DateStyle TO ISO")  # a date's text is its ISO text (_cell_sql)
        cursor.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, FORCE_QUOTE *)", spool)
        yield cursor.rowcount
        spool.seek(0)
        while piece := spool.read(1 << 18):
            yield piece


def csv_chunks(export: Export, encoding: str = "utf-8-sig"):
    """The CSV file's bytes, header first, in pieces of about CHUNK rows. UTF-8 with BOM opens
    in Excel with Chinese intact (GB18030 on request)."""
    header = io.StringIO()
    csv_writer(header).writerow(export.headers)
    if encoding == "utf-8-sig":
        yield "\ufeff".encode("utf-8")
        encoding = "utf-8"
    yield header.getvalue().encode(encoding, errors="replace")
    decoder = codecs.getincrementaldecoder("utf-8")()
    for piece in export.csv_text():
        if type(piece) is bytes:  # UTF-8 already (PostgreSQL's COPY)
            if encoding == "utf-8":
                yield piece
                continue
            piece = decoder.decode(piece)
        yield piece.encode(encoding, errors="replace")


def file_name(view, fmt: str) -> str:
    return f"{view.class_permission_name}-{clock.today():%Y%m%d}.{fmt}"


def csv_response(view, export: Export, filters: dict, encoding: str = "utf-8-sig",
                 count: int | None = None) -> Response:
    """Stream a CSV."""
    # Recorded before the first byte: a write after streaming would wait on the read the
    # stream holds open (SQLite locks the file). The count is the same query's.
    _record(view, "csv", filters, export.query.order_by(None).count() if count is None else count,
            export)
    charset = "utf-8" if encoding == "utf-8-sig" else encoding
    return Response(stream_with_context(csv_chunks(export, encoding)),
                    content_type=f"text/csv; charset={charset}",
                    headers={"Content-Disposition": f"attachment; filename={file_name(view, 'csv')}"})


class TooManyRows(DomainError):
    pass


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_spool(view, export: Export, count: int | None = None, progress=None):
    """An Excel file from a write-only workbook (rows are not kept in memory), capped: a
    spooled temporary file (in memory up to 16 MiB), positioned at its start, and its size."""
    cap = current_app.config["EXPORT_XLSX_MAX_ROWS"]
    too_many = TooManyRows(f"Excel 导出最多 {cap} 行，请缩小筛选范围或改用 CSV 导出")
    # Refused before any work: a workbook given up half-written leaves its temporary file.
    if (export.query.order_by(None).count() if count is None else count) > cap:
        raise too_many
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(str(view.list_title)[:31] or "数据")
    sheet.append(export.headers)
    for row in export.rows(excel_value):
        if export.count > cap:  # rows added since the count
            raise too_many
        cells = []
        for value in row:
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # text stays text: "=…" is never a formula here
            cells.append(cell)
        sheet.append(cells)
        if progress is not None and export.count % CHUNK == 0:
            progress(export.count)
    # Closed by the response (or the job) that reads it, not by this block.
    spool = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # noqa: SIM115
    try:
        workbook.save(spool)
    except BaseException:
        spool.close()
        raise
    size = spool.tell()
    spool.seek(0)
    return spool, size


def xlsx_response(view, export: Export, filters: dict, count: int | None = None) -> Response:
    spool, size = xlsx_spool(view, export, count)
    _record(view, "xlsx", filters, export.count)

    def stream():
        while chunk := spool.read(256 * 1024):
            yield chunk
        spool.close()

    return Response(stream(), headers={
        "Content-Disposition": f"attachment; filename={file_name(view, 'xlsx')}",
        "Content-Length": str(size)}, mimetype=XLSX_TYPE)


# --- the same export on the REST API, and past the inline limit as a job --------------------

class BadArguments(DomainError):
    pass


def api_export(api, view, args: dict) -> tuple[Export, dict]:
    """The export the API's `q` (`args`, parsed) asks for, and how the audit describes it."""
    try:
        filters = api._handle_filters_args(args)
        order = api._handle_order_args(args)
    except InvalidOrderByColumnFABException:
        raise BadArguments(f"不能按“{args.get('order_column')}”排序") from None
    except FABException as exc:
        raise BadArguments(f"筛选条件无效：只能按可筛选的列及其支持的方式筛选（{exc}）") from None
    export = Export(view, query_for(view, filters, *order), view.export_columns,
                    english_keys=request.args.get("headers") == "keys")
    return export, {"api": True, "q": request.args.get("q", "")}


def requested_encoding() -> str:
    return "gb18030" if request.args.get("encoding") == "gb18030" else "utf-8-sig"


def export_job(view, fmt: str, count: int, api: bool):
    """Past EXPORT_INLINE_MAX_ROWS an export is a job (app/jobs.py): the request's arguments
    are kept, and the job makes the same file from them (views.base `_export_job`). None below
    the limit."""
    from app.security.principal import _request_user

    if count <= current_app.config["EXPORT_INLINE_MAX_ROWS"]:
        return None
    if fmt == "xlsx" and count > current_app.config["EXPORT_XLSX_MAX_ROWS"]:
        raise TooManyRows(f"Excel 导出最多 {current_app.config['EXPORT_XLSX_MAX_ROWS']} 行，"
                          "请缩小筛选范围或改用 CSV 导出")
    params = {"path": request.path, "args": list(request.args.items(multi=True)), "fmt": fmt,
              "api": api, "right": ["can_export", view.class_permission_name]}
    label = view.model.__label__
    job = jobs.start("export", f"导出{label}（{'CSV' if fmt == 'csv' else 'Excel'}，{count} 行）",
                     _request_user(), params, resource=view.class_permission_name,
                     form_token=request.args.get("_token"), total=count)
    return jobs.submit(job)


def export_file(view, export: Export, described: dict, fmt: str, progress):
    """The export job's file: what the request would have streamed, kept in the storage (in
    the job's transaction: committed with its end)."""
    from app import storage

    # The rows are read on a session of their own: the file's chunks are written on the job's,
    # and a read's close must not end the write.
    reader = db.session.session_factory()
    export.query = export.query.with_session(reader)
    try:
        count = export.query.order_by(None).count()
        progress(0, count)
        if fmt == "csv":
            encoding = requested_encoding()
            _record(view, "csv", described, count, export)
            charset = "utf-8" if encoding == "utf-8-sig" else encoding

            def chunks():
                for piece in csv_chunks(export, encoding):
                    yield piece
                    progress(export.count)
            stored = storage.save(chunks(), file_name(view, "csv"), f"text/csv; charset={charset}",
                                  expires_on=jobs.result_expiry())
        else:
            spool, _size = xlsx_spool(view, export, count, progress)
            with spool:
                _record(view, "xlsx", described, export.count)
                stored = storage.save(storage.pieces(spool), file_name(view, "xlsx"), XLSX_TYPE,
                                      expires_on=jobs.result_expiry())
        progress(export.count)
        return stored
    finally:
        reader.close()


def api_response(api, view, fmt: str, args: dict) -> Response:
    """`GET /api/v1/<resource>/export/csv|xlsx?q=…`: every row `GET /api/v1/<resource>/?q=…`
    lists (its filters and order, all pages), written as the list page's export writes it —
    same columns, masking, audit record (`?headers=keys`, `?encoding=gb18030` likewise). Past
    EXPORT_INLINE_MAX_ROWS: 202 and the job's URL (app/jobs.py)."""
    if fmt not in ("csv", "xlsx") or view is None or not view.export_columns:
        return api.response_404()
    try:
        export, described = api_export(api, view, args)
        count = export.query.order_by(None).count()
        job = export_job(view, fmt, count, api=True)
        if job is not None:
            return api.response(202, job=job.id, status=job.status,
                                url=f"/api/v1/job/{job.id}")
        if fmt == "csv":
            return csv_response(view, export, described, requested_encoding(), count)
        return xlsx_response(view, export, described, count)
    except BadArguments as exc:
        return api.response_400(message=str(exc))
    except jobs.JobRefused as exc:
        return api.response(503, message=str(exc))
    except TooManyRows as exc:
        return api.response_422(message=str(exc))
