"""Data in: a liaison's spreadsheet (.xlsx or .csv) validated completely, then written all at
once — or not at all.

A view declares `import_columns` (model attributes, in template order) and, where DOMAIN.md
implies one, `import_key` (the natural key a row updates by: 统一社会信用代码, 身份证号). From
that, each column knows its Chinese header, how to read a cell (number, date, code by its
Chinese label, related record by its name or code within the user's choices) and whether it
is required. Cells are read as text — a formula is its text, never evaluated.

Validation runs every rule the forms run: each row becomes a model object and is flushed inside
a savepoint, so the model's rules and the data-scope write check judge it exactly as they judge
a form; errors are collected per row and column. Only when no row has an error is the whole
file committed, in one transaction, with one audit record of kind import.
"""
from __future__ import annotations

import csv
import io
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from flask import current_app
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.worksheet.datavalidation import DataValidation
from sqlalchemy import Boolean, Date, DateTime, Integer, Numeric

from app.errors import DomainError
from app.extensions import db
from app.models.base import labels_of
from app.security.scope import related_choices
from app.services import audit

REGISTRY: dict[str, Importer] = {}
BATCH = 200
XLSX_MAX_COLUMNS = 200


class ImportRefused(DomainError):
    """The file itself cannot be read (size, type, encoding, headers, row cap)."""


@dataclass
class Problem:
    row: int  # the spreadsheet's row number (the header is row 1)
    column: str  # the Chinese header, or "" for the whole row
    message: str


@dataclass
class Outcome:
    rows: int = 0
    created: int = 0
    updated: int = 0
    problems: list[Problem] = field(default_factory=list)
    written: bool = False
    table: list[list[str]] = field(default_factory=list)  # the file as read, for the report
    headers: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Column:
    name: str
    header: str
    kind: str  # text, int, decimal, date, bool, choice, relation
    required: bool
    choices: dict = field(default_factory=dict)  # label -> code, for choice
    example: str = ""
    limit: int | None = None  # numbers must stay below this in absolute value (the column's range)


def _label(model, name) -> str:
    return str(labels_of(model).get(name, name))


class Importer:
    """The import of one resource, derived from its view's declaration."""

    def __init__(self, view):
        self.view = view
        self.model = view.datamodel.obj
        self.resource = view.class_permission_name
        self.key = view.import_key
        self.columns = [self._column(name) for name in view.import_columns]
        REGISTRY[self.resource] = self

    def _column(self, name: str) -> Column:
        model, header = self.model, _label(self.model, name)
        relations = model.__mapper__.relationships
        if name in relations:
            nullable = all(c.nullable for c in relations[name].local_columns)
            return Column(name, header, "relation", not nullable)
        column = model.__table__.columns.get(name)
        if column is None:  # a write-only attribute such as 身份证号
            return Column(name, header, "text", True)
        if "choices" in column.info:
            labels = {str(text): code for code, text in column.info["choices"].items()}
            return Column(name, header, "choice", not column.nullable and column.default is None,
                          labels, next(iter(labels)))
        kind = ("bool" if isinstance(column.type, Boolean) else
                "int" if isinstance(column.type, Integer) else
                "decimal" if isinstance(column.type, Numeric) else
                "date" if isinstance(column.type, (Date, DateTime)) else "text")
        required = not column.nullable and column.default is None and not column.primary_key
        # The database's range: a 32-bit INTEGER, NUMERIC(p, s)'s integer digits.
        precision = getattr(column.type, "precision", None)
        scale = getattr(column.type, "scale", None)
        limit = 2 ** 31 if kind == "int" else \
            10 ** (precision - (scale or 0)) if kind == "decimal" and precision else None
        return Column(name, header, kind, required, limit=limit)

    # --- the template -------------------------------------------------------------------

    def template(self) -> bytes:
        """A workbook with the Chinese headers (required ones marked), an example row and
        drop-downs for coded columns."""
        workbook = Workbook()
        sheet = workbook.active
        sheet.title = "导入模板"
        bold, marked = Font(bold=True), PatternFill("solid", fgColor="FFF2CC")
        for i, col in enumerate(self.columns, start=1):
            cell = sheet.cell(row=1, column=i, value=col.header)
            cell.font = bold
            if col.required:
                cell.fill = marked
            sheet.column_dimensions[cell.column_letter].width = max(12, len(col.header) * 2 + 4)
            example = self.view.import_examples.get(col.name, col.example)
            sheet.cell(row=2, column=i, value=example)
            if col.kind == "choice":
                rule = DataValidation(type="list", formula1='"' + ",".join(col.choices) + '"',
                                      allow_blank=not col.required)
                rule.error = "请从下拉列表中选择"
                sheet.add_data_validation(rule)
                rule.add(f"{cell.column_letter}2:{cell.column_letter}5000")
        notes = workbook.create_sheet("填写说明")
        notes.append(["列名", "是否必填", "说明"])
        for col in self.columns:
            hint = {"relation": "填写名称或编码", "date": "格式 2026-01-31", "choice": "从下拉列表选择",
                    "bool": "是 / 否", "int": "整数", "decimal": "数字"}.get(col.kind, "")
            notes.append([col.header, "必填" if col.required else "", hint])
        buffer = io.BytesIO()
        workbook.save(buffer)
        return buffer.getvalue()

    # --- reading --------------------------------------------------------------------------

    def read(self, filename: str, data: bytes) -> tuple[list[str], list[list[str]]]:
        """Headers and rows of the file as text; refuses what it cannot read."""
        config = current_app.config
        if len(data) > config["IMPORT_MAX_BYTES"]:
            raise ImportRefused(f"文件超过 {config['IMPORT_MAX_BYTES'] // 1024 // 1024} MB，请拆分后导入")
        if not data.strip():
            raise ImportRefused("文件是空的")
        name = (filename or "").lower()
        if name.endswith(".xlsx") or data[:2] == b"PK":
            table = _read_xlsx(data)
        elif name.endswith((".csv", ".txt")):
            table = _read_csv(data)
        else:
            raise ImportRefused("只能导入 .xlsx 或 .csv 文件")
        table = [row for row in table if any(cell.strip() for cell in row)]
        if not table:
            raise ImportRefused("文件中没有数据")
        headers, rows = [h.strip() for h in table[0]], table[1:]
        if len(rows) > config["IMPORT_MAX_ROWS"]:
            raise ImportRefused(f"一次最多导入 {config['IMPORT_MAX_ROWS']} 行（本文件 {len(rows)} 行），请拆分后导入")
        known = {c.header for c in self.columns}
        missing = [c.header for c in self.columns if c.required and c.header not in headers]
        if missing:
            raise ImportRefused("缺少必填列：" + "、".join(missing) + "（请使用下载的模板）")
        unknown = [h for h in headers if h and h not in known]
        if unknown:
            raise ImportRefused("无法识别的列：" + "、".join(unknown) + "（请使用下载的模板）")
        return headers, rows

    # --- validating and writing --------------------------------------------------------------

    def run(self, filename: str, data: bytes, dry_run: bool = False, progress=None) -> Outcome:
        headers, rows = self.read(filename, data)
        outcome = Outcome(rows=len(rows), headers=headers,
                          table=[[*r, *[""] * (len(headers) - len(r))][:len(headers)] for r in rows])
        position = {h: i for i, h in enumerate(headers)}
        session = db.session
        lookups = _Lookups(self.model)
        session.info[audit.SKIP_ROWS] = True
        try:
            for start in range(0, len(rows), BATCH):
                batch = rows[start:start + BATCH]
                self._batch(session, batch, start, position, lookups, outcome)
                if progress:
                    progress(min(start + BATCH, len(rows)))
            if outcome.ok and not dry_run:
                session.info.pop(audit.SKIP_ROWS, None)
                audit.record(session, "import", self.resource, changes={
                    "file": filename, "rows": outcome.rows, "created": outcome.created,
                    "updated": outcome.updated})
                session.commit()
                outcome.written = True
            else:
                session.rollback()
        except Exception:
            session.rollback()
            raise
        finally:
            session.info.pop(audit.SKIP_ROWS, None)
        return outcome

    def _batch(self, session, batch, start, position, lookups, outcome) -> None:
        """Flush a batch in one savepoint; if it fails, rebuild and flush its rows one by one
        to find which rows and columns are wrong. Each savepoint opens before its rows are
        built: opening one flushes what is pending, and a row's changes to an existing record
        flushed there — outside the try — made the scope check's refusal a 500."""
        numbered = [(start + offset + 2, raw) for offset, raw in enumerate(batch)]
        seen_before = set(lookups.keys)
        # The cells' problems are kept once the batch is through: a refusal while building a row
        # (an 身份证号 one may not register) stops it half-way, and the rows are read again.
        trial = Outcome()
        savepoint = session.begin_nested()
        try:
            items = self._build_all(session, numbered, position, lookups, trial)
            if items:
                session.add_all([item for _, item, _ in items])
                session.flush()
            savepoint.commit()
            outcome.problems.extend(trial.problems)
            self._count(items, outcome)
            return
        except DomainError:
            savepoint.rollback()
        lookups.keys = seen_before
        for number, raw in numbered:
            savepoint = session.begin_nested()
            try:
                built = self._build_all(session, [(number, raw)], position, lookups, outcome)
                if not built:
                    savepoint.rollback()
                    continue
                session.add(built[0][1])
                session.flush()
                savepoint.commit()
                self._count(built, outcome)
            except DomainError as exc:
                savepoint.rollback()
                outcome.problems.append(Problem(number, self._header_of(exc.field), str(exc)))

    def _build_all(self, session, numbered, position, lookups, outcome):
        items = []
        for number, raw in numbered:
            built = self._build(session, raw, number, position, lookups, outcome)
            if built is not None:
                items.append((number, *built))
        return items

    @staticmethod
    def _count(items, outcome) -> None:
        for _, _, is_new in items:
            if is_new:
                outcome.created += 1
            else:
                outcome.updated += 1

    def _header_of(self, name: str | None) -> str:
        for col in self.columns:
            if col.name == name:
                return col.header
        return ""

    def _build(self, session, raw, number, position, lookups, outcome):
        values, problems = {}, []
        for col in self.columns:
            text = raw[position[col.header]].strip() if col.header in position and \
                position[col.header] < len(raw) else ""
            if not text:
                if col.required:
                    problems.append(Problem(number, col.header, f"“{col.header}”不能为空"))
                continue
            try:
                values[col.name] = self._convert(col, text, lookups)
            except ValueError as exc:
                problems.append(Problem(number, col.header, str(exc)))
        if problems:
            outcome.problems.extend(problems)
            return None
        item, is_new = self._find_or_new(session, values, number, lookups, outcome)
        if item is None:
            return None
        try:
            for name, value in values.items():
                setattr(item, name, value)
        except DomainError as exc:
            outcome.problems.append(Problem(number, self._header_of(exc.field), str(exc)))
            if not is_new:
                session.expire(item)  # drop the half-applied changes
            return None
        return item, is_new

    def _find_or_new(self, session, values, number, lookups, outcome):
        """Update by the natural key where DOMAIN.md implies one; a key twice in one file is
        an error of the later row."""
        if not self.key or self.key not in values:
            return self.model(), True
        key = self.view.import_key_of(values[self.key])
        if key in lookups.keys:
            outcome.problems.append(Problem(number, self._header_of(self.key),
                                            "与文件中前面的行重复"))
            return None, False
        lookups.keys.add(key)
        existing = self.view.import_lookup(session, key)
        return (existing, False) if existing is not None else (self.model(), True)

    def _convert(self, col: Column, text: str, lookups: _Lookups):
        if col.kind in ("int", "decimal"):
            wanted = "整数" if col.kind == "int" else "数字"
            try:
                number = Decimal(text)
            except InvalidOperation:
                raise ValueError(f"“{col.header}”应为{wanted}") from None
            if not number.is_finite():
                raise ValueError(f"“{col.header}”应为{wanted}")
            if col.limit is not None and abs(number) >= col.limit:
                # Past the column's range the database would fail the whole request.
                raise ValueError(f"“{col.header}”超出允许的范围")
            return int(number) if col.kind == "int" else number
        if col.kind == "date":
            try:
                return date.fromisoformat(text[:10].replace("/", "-"))
            except ValueError:
                raise ValueError(f"“{col.header}”应为日期，格式如 2026-01-31") from None
        if col.kind == "bool":
            if text in ("是", "1", "Y", "y", "true", "TRUE", "√"):
                return True
            if text in ("否", "0", "N", "n", "false", "FALSE", "×"):
                return False
            raise ValueError(f"“{col.header}”应填“是”或“否”")
        if col.kind == "choice":
            if text not in col.choices:
                raise ValueError(f"“{col.header}”应为：" + "、".join(col.choices))
            return col.choices[text]
        if col.kind == "relation":
            return lookups.find(col, text)
        return text


class _Lookups:
    """Related records by name or code, within what the user may choose (one query each),
    and the natural keys seen so far in the file."""

    def __init__(self, model):
        self.model = model
        self.cache: dict[str, dict[str, object]] = {}
        self.keys: set = set()

    def find(self, col: Column, text: str):
        if col.name not in self.cache:
            names: dict[str, object] = {}
            for row in db.session.execute(related_choices(self.model, col.name)).scalars():
                for attr in ("code", "credit_code", "name", "label", "title"):
                    value = getattr(row, attr, None)
                    if value:
                        # A name two rows share is ambiguous (False): the code must be used.
                        names[str(value)] = row if str(value) not in names else False
            self.cache[col.name] = names
        found = self.cache[col.name].get(text)
        if found is None:
            raise ValueError(f"找不到“{text}”，或不在您可选择的{col.header}范围内")
        if found is False:
            raise ValueError(f"“{text}”对应多条记录，请改填编码")
        return found


def _read_xlsx(data: bytes) -> list[list[str]]:
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception:  # noqa: BLE001 — openpyxl raises anything on a broken file
        raise ImportRefused("无法读取该 Excel 文件，请确认是 .xlsx 格式") from None
    sheet = workbook.worksheets[0]
    # openpyxl widens every row to the sheet's last column and yields each missing row: one
    # stray cell at XFD1048576 made a million rows of 16,384 cells: the import never finished.
    # Columns past XLSX_MAX_COLUMNS carry no header of a template; blank rows are skipped unread.
    rows = sheet.iter_rows(max_col=XLSX_MAX_COLUMNS, values_only=True)
    table = [[_text(v) for v in row] for row in rows if row.count(None) < len(row)]
    workbook.close()
    return table


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_csv(data: bytes) -> list[list[str]]:
    """UTF-8 (with or without BOM), UTF-16 with BOM, or GB18030 (which covers GBK)."""
    encodings = ("utf-16",) if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ("utf-8-sig", "gb18030")
    for encoding in encodings:
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ImportRefused("无法识别文件编码，请另存为 UTF-8 或 GB18030 编码的 CSV")
    try:
        return [row for row in csv.reader(io.StringIO(text.replace("\x00", "")))]
    except csv.Error:
        raise ImportRefused("CSV 文件格式有误，无法读取") from None


def _masks(importer: Importer | None, headers: list[str]) -> list:
    """For each column of the file, how its cells are written into the error report: personal
    data (身份证号, phones) masked as the lists mask them — enough to find the row, not to
    read the number off a report that outlives the import."""
    from app import validators

    names = {c.header: c.name for c in importer.columns} if importer is not None else {}
    masks = []
    for header in headers:
        name = names.get(header, "")
        if name == "id_number" or "身份证" in header:
            masks.append(validators.mask_id_number)
        elif name.endswith("phone") or "电话" in header or "手机" in header:
            masks.append(validators.mask_phone)
        else:
            masks.append(None)
    return masks


def error_report(outcome: Outcome, importer: Importer | None = None) -> bytes:
    """The rows in error only, with their row numbers and an error column: what to fix
    (UTF-8 with BOM). Personal data in them is masked (`_masks`); rows without an error are
    not repeated — the user has the file, the report only says where it is wrong."""
    by_row: dict[int, list[str]] = {}
    for problem in outcome.problems:
        by_row.setdefault(problem.row, []).append(
            f"{problem.column}：{problem.message}" if problem.column else problem.message)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["行号", *outcome.headers, "错误"])
    from app.exports import neutralise

    masks = _masks(importer, outcome.headers)
    for number, row in enumerate(outcome.table, start=2):
        if number not in by_row:
            continue
        cells = [neutralise(mask(v) if mask and v else v) for mask, v in zip(masks, row)]
        writer.writerow([number, *cells, "；".join(by_row[number])])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


# --- the error reports a failed import leaves for its download link ---------------------------
# Kept on this host's disk under instance/import-reports/ (no shared file storage exists yet:
# behind several hosts a download may miss the host that kept it), one file per failed import,
# readable by the owner only, deleted after IMPORT_REPORT_RETENTION_DAYS (default 7) — swept
# whenever a report is kept or read, so the folder holds a week of failed imports at most.

REPORT_NAME = re.compile(r"[0-9a-f]{32}")


def _reports_folder() -> Path:
    return Path(current_app.instance_path) / "import-reports"


def _retention_seconds() -> float:
    return float(current_app.config.get("IMPORT_REPORT_RETENTION_DAYS", 7)) * 86400


def purge_reports(now: float | None = None) -> int:
    """Delete the reports past their retention; how many were deleted."""
    folder = _reports_folder()
    if not folder.is_dir():
        return 0
    limit = (now or time.time()) - _retention_seconds()
    deleted = 0
    for path in folder.glob("*.csv"):
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
                deleted += 1
        except FileNotFoundError:  # another process swept it first
            continue
    return deleted


def keep_report(outcome: Outcome, importer: Importer | None = None) -> str:
    """Keep a failed import's error report; its token for the download link."""
    purge_reports()
    token = secrets.token_hex(16)
    folder = _reports_folder()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{token}.csv"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(error_report(outcome, importer))
    return token


def read_report(token) -> bytes | None:
    """A kept report by its token, or None when it is unknown or past its retention."""
    purge_reports()
    if not token or not REPORT_NAME.fullmatch(str(token)):
        return None
    path = _reports_folder() / f"{token}.csv"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
