"""Data in: an office's spreadsheet (.xlsx, .xls, .csv or .txt) validated completely, then
written all at once — or not at all.

A view declares `import_columns` (model attributes, in template order) and, where DOMAIN.md
implies one, `import_key` (the natural key a row updates by: 统一社会信用代码, 身份证号, a
tuple such as unit + year + name, or a list of such keys, the first a row fills whole being its
own: a need's 编号, else community + phone + title + 提出日期). From that, each column knows its Chinese header and the
other headers offices write for it (app/import_words.py), how to read a cell (app/import_values.py:
numbers, dates, flags, codes stored as numbers, coded values by their words, related records by
name, code or alias within the user's choices) and whether it is required. The file is read as
offices keep it (app/office_files.py): the best-matching sheet, a title row above the header,
columns the panel does not know listed and left out; a formula is its value as last saved.

Validation runs every rule the forms run: each row becomes a model object and is flushed inside
a savepoint, so the model's rules and the data-scope write check judge it exactly as they judge
a form; errors are collected per row and column. Only when no row has an error is the whole
file committed, in one transaction, with one audit record of kind import. A row that matches
an existing record by its natural key and changes nothing is counted as unchanged, not written.
"""
from __future__ import annotations

import csv
import io
import re
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time

from flask import current_app
from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.worksheet.datavalidation import DataValidation
from sqlalchemy import Boolean, Date, DateTime, Integer, Numeric, and_, select, tuple_
from sqlalchemy.orm.attributes import set_committed_value

from app import clock, jobs
from app import import_values as values_of
from app.errors import DomainError
from app.extensions import db
from app.import_words import EXAMPLE_MARK, fold, header_words
from app.models.base import labels_of
from app.office_files import FORMULA_WITHOUT_VALUE, Unreadable, read_table, text_of
from app.security.principal import current_principal
from app.security.scope import may_write, related_choices, unscoped
from app.services import audit

REGISTRY: dict[str, Importer] = {}
# Rows built and flushed together, in one savepoint: one INSERT … RETURNING per table and batch
# (SQLAlchemy's insertmanyvalues), one lookup of the batch's natural keys, one scope check. A
# batch that fails is built again row by row to find the rows in error.
BATCH = 500
XLSX_MAX_COLUMNS = 200
FORMULA_UNSAVED = "该单元格的公式没有保存计算结果，请在 Excel、WPS 或 LibreOffice 中打开并保存后再导入"


class UnknownValue(ValueError):
    """A dictionary or choice column's value the panel does not know (or cannot tell apart):
    a row error, and a value the import page lets its user map (`Unknown`)."""


class ImportRefused(DomainError):
    """The file itself cannot be read (size, type, encoding, headers, row cap)."""


@dataclass
class Problem:
    row: int  # the spreadsheet's row number (the header is row 1)
    column: str  # the Chinese header, or "" for the whole row
    message: str


@dataclass
class Reading:
    """A file as the importer reads it: which sheet, its header, which of its columns fill which
    field and which are left out, and its data rows with their row numbers in the file."""
    sheet: str
    headers: list[str]
    position: dict[str, int]  # column name -> index of the file's column
    ignored: list[str]  # the file's headers the panel does not import (未导入的列)
    rows: list[tuple[int, list]]
    sheets: list[str] = field(default_factory=list)  # a workbook's sheets, to choose from


@dataclass
class Outcome:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[Problem] = field(default_factory=list)
    written: bool = False
    # the file as read, for the report: its own headers and (row number, cells) — made text
    # only for the rows the report repeats (`error_report`)
    table: list[tuple[int, list]] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    sheet: str = ""
    unknown: list[Unknown] = field(default_factory=list)  # values the user may map, per column
    sheets: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Unknown:
    """The values of one dictionary or choice column the panel did not know, for the preview's
    form that maps each once for the whole file: the file's text -> its first rows, the
    entries (value, label) it may be mapped to, and the dictionary's kind (None: a choice)."""
    name: str
    header: str
    words: dict[str, list[int]]
    options: list[tuple[str, str]]
    kind: str | None = None


@dataclass
class Column:
    name: str
    header: str
    kind: str  # text, int, decimal, date, bool, choice, relation
    required: bool
    choices: dict = field(default_factory=dict)  # label -> code, for choice
    example: str = ""
    limit: int | None = None  # numbers must stay below this in absolute value (the column's range)
    words: tuple[str, ...] = ()  # folded headers that name it: its label first, then synonyms
    index: dict = field(default_factory=dict)  # folded word -> code, for choice
    dictionary: bool = False  # a relation to the dictionary (its values listed when unknown)
    length: int | None = None  # a text column's VARCHAR length


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
        for col in self.columns:
            col.words = tuple(dict.fromkeys(fold(w) for w in header_words(col.header)))
        # A file's header -> the column it names: an exact label first, then synonyms that
        # name one column only (a word two columns share names neither).
        self.headers: dict[str, Column] = {col.words[0]: col for col in self.columns}
        claimed: dict[str, list[Column]] = {}
        for col in self.columns:
            for word in col.words[1:]:
                claimed.setdefault(word, []).append(col)
        for word, cols in claimed.items():
            if word not in self.headers and len(cols) == 1:
                self.headers[word] = cols[0]
        # A new row names a related record by its foreign key column, the record itself set as
        # the relationship's loaded value (its rules read `item.unit`): the flush then writes
        # the column as it is, instead of each row's relationship being tracked, cascaded and
        # copied into the column (a third of a large file's flush). The scope's write check
        # reads the same column. Only for a plain many-to-one onto the target's primary key.
        self.foreign_keys: dict[str, str] = {}
        for col in self.columns:
            relation = self.model.__mapper__.relationships.get(col.name)
            if relation is None or relation.direction.name != "MANYTOONE" or relation.secondary \
                    is not None or len(relation.local_remote_pairs) != 1:
                continue
            (local, remote), = relation.local_remote_pairs
            if tuple(relation.mapper.primary_key) == (remote,):
                self.foreign_keys[col.name] = \
                    self.model.__mapper__.get_property_by_column(local).key
        REGISTRY[self.resource] = self

    def _column(self, name: str) -> Column:
        model, header = self.model, _label(self.model, name)
        relations = model.__mapper__.relationships
        if name in relations:
            nullable = all(c.nullable for c in relations[name].local_columns)
            return Column(name, header, "relation", not nullable,
                          dictionary=relations[name].mapper.class_.__tablename__ == "dictionary")
        column = model.__table__.columns.get(name)
        if column is None:  # a write-only attribute such as 身份证号
            return Column(name, header, "text", True)
        if "choices" in column.info:
            labels = {str(text): code for code, text in column.info["choices"].items()}
            return Column(name, header, "choice", not column.nullable and column.default is None,
                          labels, next(iter(labels)), index=values_of.choice_index(labels))
        kind = ("bool" if isinstance(column.type, Boolean) else
                "int" if isinstance(column.type, Integer) else
                "decimal" if isinstance(column.type, Numeric) else
                "datetime" if isinstance(column.type, DateTime) else
                "date" if isinstance(column.type, Date) else "text")
        required = not column.nullable and column.default is None and not column.primary_key
        # The database's range: a 32-bit INTEGER, NUMERIC(p, s)'s integer digits.
        precision = getattr(column.type, "precision", None)
        scale = getattr(column.type, "scale", None)
        limit = 2 ** 31 if kind == "int" else \
            10 ** (precision - (scale or 0)) if kind == "decimal" and precision else None
        length = getattr(column.type, "length", None) if kind == "text" else None
        return Column(name, header, kind, required, limit=limit, length=length)

    @staticmethod
    def synonyms_of(col: Column) -> tuple[str, ...]:
        return header_words(col.header)[1:]

    def _key_sets(self) -> list[tuple[str, ...]]:
        """The natural keys a row may update by: `import_key` is one key (a column or a tuple
        of columns) or a list of them in order of preference (a need: its 编号 if the file
        has one, else community + phone + title + 提出日期)."""
        if not self.key:
            return []
        return [(k,) if isinstance(k, str) else tuple(k)
                for k in (self.key if isinstance(self.key, list) else [self.key])]

    def _key_names(self, values: dict | None = None) -> tuple[str, ...]:
        """The key a row's values fill whole (the first such), else the first key."""
        sets = self._key_sets()
        for names in sets if values is not None else ():
            if all(values.get(name) not in (None, "") for name in names):
                return names
        return sets[0] if sets else ()

    # --- the template -------------------------------------------------------------------

    def template(self) -> bytes:
        """A workbook with the Chinese headers (required ones marked), an example row marked to
        be skipped on import, codes and phones formatted as text (`@`, so that a spreadsheet
        keeps every digit), and drop-downs for coded and dictionary columns."""
        workbook = Workbook()
        sheet = workbook.active
        sheet.title = "导入模板"
        options = workbook.create_sheet("选项")
        bold, marked = Font(bold=True), PatternFill("solid", fgColor="FFF2CC")
        example_fill = PatternFill("solid", fgColor="EDEDED")
        lists = self._template_lists()
        next_option = 1
        for i, col in enumerate(self.columns, start=1):
            cell = sheet.cell(row=1, column=i, value=col.header)
            cell.font = bold
            if col.required:
                cell.fill = marked
            letter = cell.column_letter
            sheet.column_dimensions[letter].width = max(12, len(col.header) * 2 + 4)
            words = lists.get(col.name)
            example = self.view.import_examples.get(col.name, col.example) or \
                (words[0] if words else "")
            sample = sheet.cell(row=2, column=i, value=example)
            sample.fill = example_fill
            if col.kind == "text" and (values_of.is_code(col.name) or values_of.is_phone(col.name)):
                sheet.column_dimensions[letter].number_format = "@"
                for row in range(2, 1002):
                    sheet.cell(row=row, column=i).number_format = "@"
            if words:
                column = next_option
                next_option += 1
                options.cell(row=1, column=column, value=col.header)
                for n, word in enumerate(words, start=2):
                    options.cell(row=n, column=column, value=word)
                ref = options.cell(row=1, column=column).column_letter
                rule = DataValidation(type="list", allow_blank=not col.required,
                                      formula1=f"选项!${ref}$2:${ref}${len(words) + 1}")
                rule.error = "请从下拉列表中选择"
                rule.showErrorMessage = col.kind == "choice"  # a dictionary may gain entries
                sheet.add_data_validation(rule)
                rule.add(f"{letter}2:{letter}5000")
        mark = sheet.cell(row=1, column=len(self.columns) + 1, value="填写提示")
        mark.font = bold
        sheet.cell(row=2, column=len(self.columns) + 1, value=EXAMPLE_MARK).fill = example_fill
        sheet.column_dimensions[mark.column_letter].width = 22
        notes = workbook.create_sheet("填写说明")
        notes.append(["列名", "是否必填", "说明", "也可写作"])
        for col in self.columns:
            hint = {"relation": "填写名称或编码", "date": "如 2026-01-31、2026/1/31、2026年1月31日",
                    "datetime": "如 2026-01-31、2026/1/31、2026年1月31日",
                    "choice": "从下拉列表选择", "bool": "是 / 否", "int": "整数",
                    "decimal": "数字"}.get(col.kind, "")
            if values_of.is_code(col.name) or values_of.is_phone(col.name):
                hint = "文本格式，请勿改为数字（否则会丢失位数或开头的 0）"
            notes.append([col.header, "必填" if col.required else "", hint,
                          "、".join(header_words(col.header)[1:])])
        notes.append([])
        notes.append(["第 2 行为示例行（最后一列标有“示例行”），导入时自动跳过，可保留或删除。"])
        buffer = io.BytesIO()
        workbook.save(buffer)
        return buffer.getvalue()

    def _template_lists(self) -> dict[str, list[str]]:
        """The drop-down values: a coded column's labels, a dictionary column's active labels."""
        from app.models.org import Dictionary

        lists = {col.name: list(col.choices) for col in self.columns if col.kind == "choice"}
        for col in self.columns:
            if col.dictionary:
                lists[col.name] = [str(row.label) for row in db.session.execute(
                    related_choices(self.model, col.name)).scalars()
                    if isinstance(row, Dictionary)]
        return lists

    # --- reading --------------------------------------------------------------------------

    def read(self, filename: str, data: bytes) -> tuple[list[str], list[tuple[int, list]]]:
        """Headers and data rows of the file; refuses what it cannot read."""
        reading = self.reading(filename, data)
        return reading.headers, reading.rows

    def _header_score(self, cells: list[str]) -> int:
        return len({self.headers[fold(c)].name for c in cells if c and fold(c) in self.headers})

    def reading(self, filename: str, data: bytes, sheet: str | None = None) -> Reading:
        config = current_app.config
        if len(data) > config["IMPORT_MAX_BYTES"]:
            raise ImportRefused(f"文件超过 {config['IMPORT_MAX_BYTES'] // 1024 // 1024} MB，请拆分后导入")
        if not data.strip() or not data.strip(b"\xef\xbb\xbf\r\n\t ,"):
            raise ImportRefused("文件是空的")
        try:
            table = read_table(filename, data, self._header_score, sheet)
        except Unreadable as exc:
            raise ImportRefused(str(exc)) from None
        where = f"（工作表“{table.sheet}”）" if table.sheet else ""
        if not self._header_score(table.headers):
            raise ImportRefused(f"文件前 10 行中找不到可识别的列名{where}，请使用下载的模板，或把列名写在第一行")
        position: dict[str, int] = {}
        ignored = []
        for i, header in enumerate(table.headers):
            col = self.headers.get(fold(header)) if header else None
            if col is None:
                ignored.append(header or f"（第 {i + 1} 列，无列名）")
                continue
            if col.name in position:
                first = table.headers[position[col.name]]
                same = f"“{first}”和“{header}”" if fold(first) != fold(header) else f"“{header}”出现了两次，"
                raise ImportRefused(f"第 {table.header_row} 行{where}：列{same}都对应“{col.header}”，请只保留其中一列")
            position[col.name] = i
        missing = [c.header for c in self.columns if c.required and c.name not in position]
        if missing:
            raise ImportRefused("缺少必填列：" + "、".join(missing) + f"{where}（请使用下载的模板）")
        rows = [(n, r) for n, r in table.rows if EXAMPLE_MARK not in r]
        if not rows:
            raise ImportRefused(f"文件中没有数据{where}")
        if len(rows) > config["IMPORT_MAX_ROWS"]:
            raise ImportRefused(f"一次最多导入 {config['IMPORT_MAX_ROWS']} 行（本文件 {len(rows)} 行），请拆分后导入")
        return Reading(table.sheet, table.headers, position, ignored, rows, table.sheets)

    # --- validating and writing --------------------------------------------------------------

    def run(self, filename: str, data: bytes, dry_run: bool = False, progress=None,
            commit: bool = True, mappings: dict | None = None, sheet: str | None = None) -> Outcome:
        """Validate every row and, if all are right and not `dry_run`, write them in one
        transaction — committed here, or (`commit=False`, a job) left for the caller to commit
        with its own end. Unknown values of dictionary and choice columns resolve by the
        user's remembered mappings and `mappings` ((column, folded word) -> value). `sheet`:
        the workbook's sheet the user chose (else the best-matching one)."""
        reading = self.reading(filename, data, sheet)
        rows = reading.rows
        outcome = self.outcome_of(reading)
        lookups = _Lookups(self.model)
        lookups.mapped = {**remembered(self.resource), **(mappings or {})}

        def validate(session):
            for start in range(0, len(rows), BATCH):
                batch = rows[start:start + BATCH]
                self._batch(session, batch, reading.position, lookups, outcome)
                if progress:
                    progress(min(start + BATCH, len(rows)))

        done = self.in_one_transaction(filename, outcome, validate, dry_run, commit)
        done.unknown = self._unknown(lookups)
        return done

    def _unknown(self, lookups) -> list[Unknown]:
        found = []
        for col in self.columns:
            words = lookups.unknown.get(col.name)
            if not words:
                continue
            if col.kind == "choice":
                options, kind = [(code, label) for label, code in col.choices.items()], None
            else:
                shown = lookups.shown.get(col.name, [])
                options = [(str(row.id), name) for name, row in shown]
                kind = next((row.kind for _, row in shown), None)
            found.append(Unknown(col.name, col.header, words, options, kind))
        return found

    @staticmethod
    def outcome_of(reading) -> Outcome:
        """The outcome of reading a file: its headers and rows as read, for the error report."""
        return Outcome(rows=len(reading.rows), headers=reading.headers, ignored=reading.ignored,
                       sheet=reading.sheet, sheets=reading.sheets, table=reading.rows)

    def in_one_transaction(self, filename, outcome, validate, dry_run, commit) -> Outcome:
        """Run `validate(session)` (it builds the rows and notes errors in `outcome`); if all
        are right and not `dry_run`, record the import once and commit — or (`commit=False`, a
        job) flush and leave the commit to the caller; otherwise roll everything back."""
        session = db.session
        session.info[audit.SKIP_ROWS] = True
        try:
            validate(session)
            if outcome.ok and not dry_run:
                session.info.pop(audit.SKIP_ROWS, None)
                audit.record(session, "import", self.resource, changes={
                    "file": filename, "rows": outcome.rows, "created": outcome.created,
                    "updated": outcome.updated, "unchanged": outcome.unchanged})
                if commit:
                    session.commit()
                else:
                    session.flush()
                outcome.written = True
            else:
                session.rollback()
        except Exception:
            session.rollback()
            raise
        finally:
            session.info.pop(audit.SKIP_ROWS, None)
        return outcome

    def _batch(self, session, numbered, position, lookups, outcome) -> None:
        """Flush a batch in one savepoint; if it fails, rebuild and flush its rows one by one
        to find which rows and columns are wrong. Each savepoint opens before its rows are
        built: opening one flushes what is pending, and a row's changes to an existing record
        flushed there — outside the try — made the scope check's refusal a 500."""
        seen_before = dict(lookups.keys)
        # The cells' problems are kept once the batch is through: a refusal while building a row
        # (an 身份证号 one may not register) stops it half-way, and the rows are read again.
        trial = Outcome()
        savepoint = session.begin_nested()
        try:
            items = self._build_all(session, numbered, position, lookups, trial)
            if items:
                session.add_all([item for _, item, state in items if state != "unchanged"])
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
                if built[0][2] != "unchanged":
                    session.add(built[0][1])
                session.flush()
                savepoint.commit()
                self._count(built, outcome)
            except DomainError as exc:
                savepoint.rollback()
                outcome.problems.append(Problem(number, self._header_of(exc.field), str(exc)))

    def _build_all(self, session, numbered, position, lookups, outcome):
        converted = []
        for number, raw in numbered:
            values = self._values(raw, number, position, lookups, outcome)
            if values is not None:  # its key once: the batch's lookup and the row's own use it
                converted.append((number, values, self._keyed(values)))
        existing = self._existing(session, [keyed for _, _, keyed in converted])
        items = []
        for number, values, keyed in converted:
            built = self._build(session, values, keyed, number, lookups, outcome, existing)
            if built is not None:
                items.append((number, *built))
        return items

    @staticmethod
    def _count(items, outcome) -> None:
        for _, _, state in items:
            setattr(outcome, state, getattr(outcome, state) + 1)

    def _header_of(self, name: str | None) -> str:
        for col in self.columns:
            if col.name == name:
                return col.header
        return ""

    def _values(self, raw, number, position, lookups, outcome) -> dict | None:
        """A row's cells as the values of its columns, or None when a cell is wrong."""
        values, problems = {}, []
        if lookups.readers is None:
            lookups.readers = [(col, position.get(col.name), self._reader(col, lookups))
                               for col in self.columns]
        width = len(raw)
        for col, at, read in lookups.readers:
            cell = raw[at] if at is not None and at < width else None
            if cell is FORMULA_WITHOUT_VALUE:
                problems.append(Problem(number, col.header, FORMULA_UNSAVED))
                continue
            if cell is None or (type(cell) is str and not cell.strip()):
                if col.required:
                    problems.append(Problem(number, col.header, f"“{col.header}”不能为空"))
                continue
            try:
                values[col.name] = read(cell)
            except UnknownValue as exc:
                rows = lookups.unknown.setdefault(col.name, {}).setdefault(values_of.plain(
                    text_of(cell)), [])
                if len(rows) < 5:
                    rows.append(number)
                problems.append(Problem(number, col.header, str(exc)))
            except ValueError as exc:
                problems.append(Problem(number, col.header, str(exc)))
        problems.extend(self._past_work_refused(values, number, lookups))
        if problems:
            outcome.problems.extend(problems)
            return None
        return values

    def _past_work_refused(self, values, number, lookups) -> list[Problem]:
        """Past work (a status beyond the first, the dates of its steps) is recorded only by a
        role that may make the workflow's first moves (`view.import_past_work`)."""
        workflow = self.view.workflow
        past = [name for name in self.view.import_past_work if name in values and not (
            name == workflow.status_field and values[name] == workflow.first_status)]
        if not past:
            return []
        if lookups.may_record_past_work is None:
            lookups.may_record_past_work = workflow.may_record_past_work(current_principal())
        if lookups.may_record_past_work:
            return []
        return [Problem(number, self._header_of(past[0]),
                        f"您的角色不能导入已办理过的{self.model.__label__}（状态和办理时间由社区管理员及以上角色补录），"
                        f"请删去“{self._header_of(past[0])}”列或留空")]

    def _build(self, session, values, keyed, number, lookups, outcome, existing):
        item, is_new = self._find_or_new(session, values, keyed, number, lookups, outcome,
                                         existing)
        if item is None:
            return None
        if not is_new:
            keys = keyed[0]
            values = {name: value for name, value in values.items()
                      if name not in keys and not _same(getattr(item, name, None), value)}
            workflow = self.view.workflow
            if workflow is not None and workflow.status_field in values:
                outcome.problems.append(Problem(number, self._header_of(workflow.status_field),
                                                f"已有记录的状态为“{workflow.status_of(item)}”，状态只能在办理流程中变更，不能通过导入修改"))
                return None
            if not values:
                if not may_write(session, item):  # unchanged, yet not the user's to write
                    outcome.problems.append(Problem(number, "", f"无权修改该{self.model.__label__}（超出数据范围）"))
                    return None
                return item, "unchanged"
        try:
            for name, value in values.items():
                key = self.foreign_keys.get(name) if is_new else None
                if key is None:
                    setattr(item, name, value)
                else:  # the row's column, and the record it names for its rules to read
                    setattr(item, key, value.id)
                    set_committed_value(item, name, value)
            # Past work is checked on a new row, and on a row whose past work the file changes
            # (a 办结时间 written onto a 待受理 need is a status its dates could not reach).
            if is_new and self.view.import_past_work or set(values) & set(self.view.import_past_work):
                self.model.__past_work__.check(item)
        except DomainError as exc:
            outcome.problems.append(Problem(number, self._header_of(exc.field), str(exc)))
            if not is_new:
                session.expire(item)  # drop the half-applied changes
            return None
        return item, "created" if is_new else "updated"

    def _keyed(self, values) -> tuple[tuple[str, ...], object, tuple] | None:
        """A row's natural key: the names of the key it fills, the key as stored
        (`view.import_key_of`) and its marker (`_marker`); None when it lacks one."""
        names = self._key_names(values)
        if not names or any(values.get(name) in (None, "") for name in names):
            return None
        key = self.view.import_key_of(values[names[0]] if len(names) == 1 else
                                      tuple(values[name] for name in names))
        return names, key, self._marker(key, names)

    @staticmethod
    def _marker(key, names=()) -> tuple:
        """A key as a dict key: which key it is (its names), related records by their id."""
        return (names, *(k.id if isinstance(k, db.Model) else k
                         for k in (key if isinstance(key, tuple) else (key,))))

    def _key_columns(self, names):
        """The database columns of a natural key, or None when it is not made of columns
        (身份证号 is found by its keyed hash: the view's own `import_lookup`)."""
        columns = []
        for name in names:
            relation = self.model.__mapper__.relationships.get(name)
            if relation is not None:
                columns.extend(relation.local_columns)
            elif name in self.model.__table__.columns:
                columns.append(self.model.__table__.columns[name])
            else:
                return None
        return columns or None

    def _existing(self, session, keyed_rows: list) -> dict | None:
        """The live records a batch's keys (`_keyed`) name, in one query (marker -> record),
        among all rows (the write check then decides). Without autoflush: a flush inside
        `unscoped()` skips the write check (issue 17). None when the view looks rows up itself."""
        sets = self._key_sets()
        if any(self._key_columns(names) is None for names in sets):
            return None
        markers: dict[tuple, set] = {}
        for keyed in keyed_rows:
            if keyed is not None:
                names, _, marker = keyed
                markers.setdefault(names, set()).add(marker[1:])
        found: dict = {}
        for names, keys in markers.items():  # one query per key the batch's rows use
            columns = self._key_columns(names)
            attrs = [self.model.__mapper__.get_property_by_column(c).key for c in columns]
            # Each column's own IN beside the tuple's: a list of row values is no index's
            # condition (SQLite scanned the 200,000 resources of the city data once a batch),
            # a column's values are.
            where = columns[0].in_([m[0] for m in keys]) if len(columns) == 1 else \
                and_(tuple_(*columns).in_(list(keys)),
                     *(column.in_({m[i] for m in keys}) for i, column in enumerate(columns)))
            with unscoped(), session.no_autoflush:
                for row in session.execute(select(self.model).where(where).order_by(self.model.id)).scalars():
                    found.setdefault((names, *(getattr(row, a) for a in attrs)), row)
        return found

    def _find_or_new(self, session, values, keyed, number, lookups, outcome, existing):
        """Update by the natural key where DOMAIN.md implies one; a key twice in one file is
        an error of the later row (naming the earlier one)."""
        if keyed is None:
            return self.model(), True
        names, key, marker = keyed
        if marker in lookups.keys:
            keys = "、".join(self._header_of(name) for name in names)
            outcome.problems.append(Problem(number, self._header_of(names[0]),
                                            f"与文件中第 {lookups.keys[marker]} 行重复（{keys}相同）"))
            return None, False
        lookups.keys[marker] = number
        found = existing.get(marker) if existing is not None else self.view.import_lookup(session, key)
        return (found, False) if found is not None else (self.model(), True)

    def _reader(self, col: Column, lookups: _Lookups):
        """`_convert` for one column of one file, and a text's length checked against its
        column's (PostgreSQL and MariaDB refuse a longer one: the whole request failed, a 500;
        SQLite stored it)."""
        read = self._reader_of(col, lookups)
        if not col.length:
            return read

        def within_length(cell, length=col.length):
            text = read(cell)
            if len(text) > length:
                raise ValueError(f"“{col.header}”最多 {length} 个字（本格 {len(text)} 个字）")
            return text
        return within_length

    def _reader_of(self, col: Column, lookups: _Lookups):
        """`_convert` for one column of one file, its kind looked at once: a file of 10,000 rows
        asks it 100,000 times. Plain text is the cell itself; a coded or related value, the
        same few words on every row, is converted once per distinct cell (a failure is not
        kept: each row in error gets its own message)."""
        if col.kind == "text" and not (values_of.is_code(col.name) or values_of.is_phone(col.name)):
            return lambda cell: (cell if type(cell) is str else text_of(cell)).strip()
        if col.kind not in ("choice", "relation"):
            return lambda cell: self._convert(col, cell, lookups)
        seen: dict = {}

        def read(cell):
            key = (type(cell), cell)  # 1 and True are equal keys, yet not the same word
            try:
                return seen[key]
            except KeyError:
                value = seen[key] = self._convert(col, cell, lookups)
                return value
            except TypeError:  # unhashable
                return self._convert(col, cell, lookups)
        return read

    def _convert(self, col: Column, cell, lookups: _Lookups):
        if col.kind in ("int", "decimal"):
            number = values_of.number_of(col.header, cell, whole=col.kind == "int")
            if col.limit is not None and abs(number) >= col.limit:
                # Past the column's range the database would fail the whole request.
                raise ValueError(f"“{col.header}”超出允许的范围")
            return int(number) if col.kind == "int" else number
        if col.kind == "date":
            return values_of.date_of(col.header, cell)
        if col.kind == "datetime":  # a day, as offices record it: its start there, stored in UTC
            return clock.to_utc(datetime.combine(values_of.date_of(col.header, cell), clock_time()))
        if col.kind == "bool":
            return values_of.flag_of(col.header, cell)
        text = text_of(cell).strip()
        if col.kind == "choice":
            code = col.index.get(fold(text))
            if code is None:
                code = lookups.mapped.get((col.name, fold(values_of.plain(text)))) if lookups else None
                if code not in col.choices.values():
                    raise UnknownValue(f"“{col.header}”的值“{text}”无法识别，可填：" + "、".join(col.choices))
            return code
        if col.kind == "relation":
            return lookups.find(col, values_of.plain(text))
        if values_of.is_code(col.name) or values_of.is_phone(col.name):
            return values_of.code_text(col.header, col.name, cell)
        return text


def remembered(resource: str) -> dict[tuple[str, str], str]:
    """The acting user's mappings of its files' values for `resource` ((column, folded word)
    -> value); none for the system (a command without --as)."""
    from app.models.import_maps import ImportValueMap

    user_id = current_principal().user_id
    if user_id is None:
        return {}
    rows = db.session.execute(select(ImportValueMap.field, ImportValueMap.word, ImportValueMap.value)
                              .where(ImportValueMap.user_id == user_id,
                                     ImportValueMap.resource == resource)).all()
    return {(f, w): v for f, w, v in rows}


NEW_ENTRY = "__new__"


def remember(importer: Importer, chosen: dict[tuple[str, str], str], may_add: bool) -> dict:
    """Keep the values the user mapped on the import page for its next files, each checked
    against what the column accepts (a code of the choice, an entry of the dictionary the user
    may choose); `NEW_ENTRY` adds the value to the dictionary, for a user who may edit it
    (`may_add`). Committed at once, the entries added audited as any. Returns what applies
    to this file ((column, folded word) -> value); a wrong choice is a DomainError."""
    from app.models.import_maps import ImportValueMap
    from app.models.org import Dictionary

    user_id = current_principal().user_id
    columns = {col.name: col for col in importer.columns}
    lookups = _Lookups(importer.model)
    applied: dict[tuple[str, str], str] = {}
    for (name, text), value in chosen.items():
        col, word = columns.get(name), fold(values_of.plain(text))
        if col is None or not word or not value:
            continue
        if col.kind == "choice":
            if value not in col.choices.values():
                raise DomainError(f"“{col.header}”没有“{value}”这一项")
        elif col.kind == "relation" and col.dictionary:
            if col.name not in lookups.shown:
                lookups._load(col)
            shown = lookups.shown[col.name]
            if value == NEW_ENTRY:
                kind = next((row.kind for _, row in shown), None)
                if not may_add or kind is None:
                    raise DomainError("您不能在数据字典中新增条目（由组织部维护），请选择已有的一项")
                entry = Dictionary(kind=kind, code=f"import-{secrets.token_hex(4)}",
                                   label=values_of.plain(text)[:64],
                                   order=max((row.order or 0 for _, row in shown), default=0) + 1)
                db.session.add(entry)
                db.session.flush()
                value = str(entry.id)
            elif value not in {str(row.id) for _, row in shown}:
                raise DomainError(f"“{col.header}”没有所选的一项，请重新选择")
        else:
            continue
        applied[(name, word)] = value
        if user_id is None:
            continue
        kept = db.session.execute(select(ImportValueMap).where(
            ImportValueMap.user_id == user_id, ImportValueMap.resource == importer.resource,
            ImportValueMap.field == name, ImportValueMap.word == word)).scalar()
        if kept is None:
            db.session.add(ImportValueMap(user_id=user_id, resource=importer.resource,
                                          field=name, word=word, value=value))
        else:
            kept.value, kept.changed_on = value, clock.utcnow()
    db.session.commit()
    return applied


def _same(current, value) -> bool:
    """Whether a record's value is what the file says (a date column holding a datetime at
    midnight is the file's date)."""
    if isinstance(current, datetime) and not isinstance(value, datetime) and isinstance(value, date):
        return current.time() == datetime.min.time() and current.date() == value
    if isinstance(current, db.Model) or isinstance(value, db.Model):
        return current is value
    return current == value


class _Lookups:
    """Related records by name, code or alias, within what the user may choose (one query
    each), and the natural keys seen so far in the file (-> the row that had it)."""

    ATTRS = ("code", "credit_code", "name", "short_name", "label", "title", "alias")
    SPLIT = re.compile(r"[、,，;；/|\s]+")

    def __init__(self, model):
        self.model = model
        self.cache: dict[str, dict[str, object]] = {}
        self.shown: dict[str, list[tuple[str, object]]] = {}
        self.keys: dict = {}
        self.found: dict[tuple[str, str], object] = {}  # (column, text) -> record, as resolved
        self.mapped: dict[tuple[str, str], str] = {}  # (column, folded word) -> code or id
        self.unknown: dict[str, dict[str, list[int]]] = {}  # column -> unknown text -> rows
        self.may_record_past_work: bool | None = None  # asked once per file
        self.readers: list | None = None  # (column, the file's cell index, reader), per file

    def _load(self, col: Column) -> None:
        names: dict[str, object] = {}
        shown: list[tuple[str, object]] = []
        for row in db.session.execute(related_choices(self.model, col.name)).scalars():
            for attr in self.ATTRS:
                value = getattr(row, attr, None)
                if not value:
                    continue
                words = self.SPLIT.split(str(value)) if attr == "alias" else [str(value)]
                for word in words:
                    key = fold(word)
                    if key:
                        # A name two rows share is ambiguous (False): the code must be used.
                        names[key] = row if names.get(key, row) is row else False
            label = getattr(row, "label", None) or getattr(row, "name", None) or \
                getattr(row, "title", None)
            if label:
                shown.append((str(label), row))
        self.cache[col.name] = names
        self.shown[col.name] = shown

    def find(self, col: Column, text: str):
        # A file names the same few records on every row: each text is resolved once.
        found = self.found.get((col.name, text))
        if found is None:
            found = self.found[col.name, text] = self._find(col, text)
        return found

    def _find(self, col: Column, text: str):
        if col.name not in self.cache:
            self._load(col)
        key = fold(text)
        found = self.cache[col.name].get(key)
        if found is False:
            raise ValueError(f"“{text}”对应多条记录，请改填编码")
        if found is not None:
            return found
        shown = self.shown[col.name]
        mapped = self.mapped.get((col.name, key))  # the user's own word for an entry
        if col.dictionary and mapped is not None:
            for _, row in shown:
                if str(row.id) == mapped:
                    return row
        # A unique prefix (工农社区 for 工农社区党总支) names its record.
        prefixed = {id(row): (name, row) for name, row in shown if fold(name).startswith(key)}
        if len(prefixed) == 1 and key:
            return next(iter(prefixed.values()))[1]
        if col.dictionary:
            inside = [name for name, _ in shown if key and key in fold(name)]
            accepted = "、".join(name for name, _ in shown)
            if len(inside) > 1:
                raise UnknownValue(f"“{col.header}”的值“{text}”不明确，可能是：{'、'.join(inside)}；可填：{accepted}")
            raise UnknownValue(f"“{col.header}”的值“{text}”无法识别，可填：{accepted}")
        if len(prefixed) > 1:
            names = "、".join(name for name, _ in list(prefixed.values())[:5])
            raise ValueError(f"“{text}”对应多条记录（{names}），请填写完整名称或编码")
        guesses = values_of.near(text, [name for name, _ in shown])
        if guesses:
            raise ValueError(f"找不到“{text}”，您是不是要找：{'、'.join(guesses)}")
        raise ValueError(f"找不到“{text}”，或不在您可选择的{col.header}范围内")


def _masks(importer: Importer | None, headers: list[str]) -> list:
    """For each column of the file, how its cells are written into the error report: personal
    data (身份证号, phones) masked as the lists mask them — enough to find the row, not to
    read the number off a report that outlives the import."""
    from app import validators

    masks = []
    for header in headers:
        col = importer.headers.get(fold(header)) if importer is not None else None
        name = col.name if col is not None else ""
        if name == "id_number" or "身份证" in header:
            masks.append(validators.mask_id_number)
        elif name.endswith("phone") or "电话" in header or "手机" in header:
            masks.append(validators.mask_phone)
        else:
            masks.append(None)
    return masks


def error_report(outcome: Outcome, importer: Importer | None = None) -> bytes:
    """The rows in error only: the file's own columns, then 错误 (which starts with the row's
    number in the file), UTF-8 with BOM — corrected, it imports as it is (错误 is a column the
    importer leaves out). Personal data in it is masked (`_masks`); rows without an error are
    not repeated — the user has the file, the report only says where it is wrong."""
    by_row: dict[int, list[str]] = {}
    for problem in outcome.problems:
        by_row.setdefault(problem.row, []).append(
            f"{problem.column}：{problem.message}" if problem.column else problem.message)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*outcome.headers, "错误"])
    from app.spreadsheet import neutralise

    masks = _masks(importer, outcome.headers)
    width = len(outcome.headers)
    for number, row in outcome.table:
        if number not in by_row:
            continue
        row = [text_of(c) for c in [*row, *[None] * (width - len(row))][:width]]
        cells = [neutralise(mask(v) if mask and v else v) for mask, v in zip(masks, row)]
        writer.writerow([*cells, f"第 {number} 行：" + "；".join(by_row[number])])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


# --- the error reports a failed import leaves for its download link ---------------------------
# Kept in the shared storage (app/storage.py), so the download link works through any host, for
# IMPORT_REPORT_RETENTION_DAYS (default 7): the daily purge deletes them after that. The link's
# token — the stored file's id — is kept in the user's signed session, never taken from the URL.

def keep_report(outcome: Outcome, importer: Importer | None = None) -> int:
    """Keep a failed import's error report; its token for the download link."""
    from app import storage

    days = float(current_app.config.get("IMPORT_REPORT_RETENTION_DAYS", 7))
    stored = storage.save([error_report(outcome, importer)], "errors.csv",
                          "text/csv; charset=utf-8",
                          expires_on=jobs.utcnow() + timedelta(days=days))
    db.session.commit()
    return stored.id


def keep_upload(resource: str, filename: str, data: bytes) -> dict:
    """Keep a previewed file whose values the user is to map (the import page's second form),
    until the jobs' results expire; the session holds what names it."""
    from app import storage

    stored = storage.save([data], filename, "application/octet-stream",
                          expires_on=jobs.result_expiry())
    db.session.commit()
    return {"resource": resource, "id": stored.id, "name": filename}


def read_upload(kept, resource: str) -> tuple[str, bytes] | None:
    """The kept file (`keep_upload`) of this resource, or None when gone or another's."""
    from app import storage

    if not isinstance(kept, dict) or kept.get("resource") != resource:
        return None
    stored = storage.get(kept.get("id")) if isinstance(kept.get("id"), int) else None
    if stored is None or (stored.expires_on is not None and stored.expires_on < jobs.utcnow()):
        return None
    return kept["name"], b"".join(storage.read(stored))


def read_report(token) -> bytes | None:
    """A kept report by its token, or None when it is unknown or past its retention."""
    from app import storage

    if not isinstance(token, int):
        return None
    stored = storage.get(token)
    days = float(current_app.config.get("IMPORT_REPORT_RETENTION_DAYS", 7))
    if stored is None or stored.created_on < jobs.utcnow() - timedelta(days=days):
        return None
    return b"".join(storage.read(stored))


# --- past IMPORT_INLINE_MAX_ROWS: a job (app/jobs.py) ------------------------------------------

def import_job(view, importer: Importer, filename: str, data: bytes, form_token: str | None,
               sheet: str | None = None):
    """Keep the uploaded file in the storage and start a job that imports it, when it has more
    rows than IMPORT_INLINE_MAX_ROWS; None otherwise (imported in the request, as before)."""
    from app import storage
    from app.security.principal import _request_user

    rows = importer.reading(filename, data, sheet).rows  # a file refused is refused here, at once
    if len(rows) <= current_app.config["IMPORT_INLINE_MAX_ROWS"]:
        return None
    source = storage.save([data], filename, "application/octet-stream",
                          expires_on=jobs.result_expiry())
    job = jobs.start("import", f"导入{view.model.__label__}（{filename}，{len(rows)} 行）",
                     _request_user(), {"file": source.id, "filename": filename, "sheet": sheet,
                                       "right": ["can_import", view.class_permission_name]},
                     resource=view.class_permission_name, form_token=form_token,
                     total=len(rows))
    return jobs.submit(job)


def import_work(view, importer: Importer, job, params, progress):
    """The import job (views.base `_import_job`): all-or-nothing in the job's transaction,
    committed with its end; a file with errors writes nothing and leaves its error report as
    the job's file."""
    from app import storage
    from app.models.jobs import StoredFile

    source = db.session.get(StoredFile, params["file"])
    if source is None:
        raise ImportRefused("上传的文件已过期或已删除，请重新上传")
    data = b"".join(storage.read(source))
    total = job.total
    outcome = importer.run(params["filename"], data, progress=lambda done: progress(done, total),
                           commit=False, sheet=params.get("sheet"))
    progress(outcome.rows, outcome.rows)
    if outcome.written:
        progress.message = f"导入成功：新增 {outcome.created} 条，更新 {outcome.updated} 条"
        return None
    progress.failed = True
    progress.message = f"发现 {len(outcome.problems)} 处错误，未导入任何数据；请下载错误报告"
    return storage.save([error_report(outcome, importer)], f"{job.resource}-errors.csv",
                        "text/csv; charset=utf-8", expires_on=jobs.result_expiry())

