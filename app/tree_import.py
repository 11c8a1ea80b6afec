"""The organisation tree by import (issue 20): a community's grids and building groups, a
street's communities — one file, rows in any order, written whole or not at all.

Each row names its parent (上级) by 编码, 名称 or 简称: a row of the same file, or a node the
importer may place nodes under (its own subtree: the same choices the form offers). Parents
are written before their children, level by level; a node whose chain of parents never reaches
an existing node is a cycle. 编码 is optional — one is generated, unique, from the parent's —
and a row updates the node of its 编码, or else the node of the same 名称 under the same
parent. The model's own rules judge each node as a form's (type below the parent's, 编码
unique), and the data-scope write check keeps every node inside the importer's subtree.
"""
from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import select

from app.errors import DomainError
from app.imports import Column, Importer, Outcome, Problem, remembered
from app.models.org import Organization
from app.security.scope import related_choices, unscoped


class OrgTreeImporter(Importer):
    """`organization`'s import: the tree's rows in any order (see the module's doc)."""

    def __init__(self, view):
        super().__init__(view)
        for col in self.columns:
            if col.name == "parent":
                col.required = True  # only a district stands alone, and none is imported
            if col.name == "code":
                col.required = False  # generated when missing

    def run(self, filename: str, data: bytes, dry_run: bool = False, progress=None,
            commit: bool = True, mappings: dict | None = None, sheet: str | None = None) -> Outcome:
        reading = self.reading(filename, data, sheet)
        # a 类型 the user mapped on the page (or before) reads as it (Importer.run)
        self._mapped = {**remembered(self.resource), **(mappings or {})}
        outcome = self.outcome_of(reading)
        # column name -> the file's column (the reader matched the offices' own headers)
        position = {col.header: reading.position[col.name] for col in self.columns
                    if col.name in reading.position}

        def validate(session):
            with session.no_autoflush:
                plan = self._plan(session, reading.rows, position, outcome)
            if outcome.ok:
                self._write(session, plan, outcome, progress)

        return self.in_one_transaction(filename, outcome, validate, dry_run, commit)

    # --- planning: every row read, its parent found, its node found or made -------------------

    def _plan(self, session, rows, position, outcome):
        read = []  # (row number, values)
        for number, raw in rows:
            values, problems = {}, []
            for col in self.columns:
                text = str(raw[position[col.header]] or "").strip() \
                    if col.header in position and position[col.header] < len(raw) else ""
                if not text:
                    if col.required:
                        problems.append(Problem(number, col.header, f"“{col.header}”不能为空"))
                    continue
                if col.kind == "relation":
                    values[col.name] = text  # resolved below: a row of the file or a node
                    continue
                try:
                    values[col.name] = self._convert(col, text, SimpleNamespace(mapped=self._mapped))
                except ValueError as exc:
                    problems.append(Problem(number, col.header, str(exc)))
            outcome.problems.extend(problems)
            if not problems:
                read.append((number, values))
        parent_col = self._col("parent")
        code_col = self._col("code")
        by_code, by_name = {}, {}
        for number, values in read:
            code = values.get("code")
            if code:
                if code in by_code:
                    outcome.problems.append(Problem(number, code_col.header,
                                                    f"编码“{code}”与第 {by_code[code]} 行重复"))
                    continue
                by_code[code] = number
            # a row is named by its 名称 or its 简称 (an office writes the short one as 上级)
            for name in {values["name"], values.get("short_name")} - {None}:
                by_name.setdefault(name, []).append(number)
        # The nodes one may place nodes under (and so name as 上级), by code and by name or 简称.
        node_codes, node_names = {}, {}
        for node in session.execute(related_choices(Organization, "parent")).scalars():
            node_codes[node.code] = node
            for name in {node.name, node.short_name} - {None, ""}:
                node_names[name] = node if node_names.get(name, node) is node else False
        rows_by_number = dict(read)
        parent_of: dict[int, object] = {}  # row number -> a row number (int) or a node
        for number, values in read:
            text = values["parent"]
            if text in by_code:
                parent_of[number] = by_code[text]
            elif text in node_codes:
                parent_of[number] = node_codes[text]
            elif len(by_name.get(text, ())) == 1:
                parent_of[number] = by_name[text][0]
            elif len(by_name.get(text, ())) > 1:
                outcome.problems.append(Problem(number, parent_col.header,
                                                f"文件中有多行名为“{text}”，请改填上级的编码"))
            elif node_names.get(text) is False:
                outcome.problems.append(Problem(number, parent_col.header,
                                                f"“{text}”对应多个党组织，请改填编码"))
            elif text in node_names:
                parent_of[number] = node_names[text]
            else:
                outcome.problems.append(Problem(
                    number, parent_col.header,
                    f"找不到上级“{text}”，或它不在您的管辖范围内（只能导入到本级组织之下）"))
        depth = self._levels(parent_of, outcome)
        levels: dict[int, list[int]] = {}
        for number, level in depth.items():
            levels.setdefault(level, []).append(number)
        return [(level, [(n, rows_by_number[n], parent_of[n]) for n in sorted(levels[level])])
                for level in sorted(levels)]

    def _levels(self, parent_of: dict, outcome: Outcome) -> dict[int, int]:
        """Each row's depth below the existing node its chain of parents reaches (0: its parent
        exists). A chain coming back to a row is a cycle; a row below a wrong row is wrong too."""
        depth: dict[int, int] = {}
        bad: dict[int, str] = {}
        for start in parent_of:
            chain, current = [], start
            while current not in depth and current not in bad:
                if current in chain:
                    for row in chain[chain.index(current):]:
                        bad[row] = "上级关系成环：沿上级追溯回到了本行"
                    break
                parent = parent_of.get(current)
                if parent is None:  # a parent row whose own cells are wrong
                    break
                if not isinstance(parent, int):
                    depth[current] = 0
                    break
                chain.append(current)
                current = parent
            for row in reversed(chain):
                if row in bad or row in depth:
                    continue
                parent = parent_of[row]
                if parent in depth:
                    depth[row] = depth[parent] + 1
                else:
                    bad[row] = f"上级（第 {parent} 行）有错误"
        header = self._col("parent").header
        for row, message in sorted(bad.items()):
            outcome.problems.append(Problem(row, header, message))
        return depth

    def _col(self, name) -> Column:
        return next(c for c in self.columns if c.name == name)

    # --- writing: level by level, parents first ------------------------------------------

    def _write(self, session, plan, outcome, progress) -> None:
        with unscoped():
            used = set(session.execute(select(Organization.code)).scalars())
        nodes: dict[int, Organization] = {}
        done = 0
        for _level, rows in plan:
            # All of a level in one savepoint (opened before its rows are built: opening one
            # flushes what is pending); if that fails, row by row, to say which rows are wrong.
            savepoint = session.begin_nested()
            known = self._existing(session, rows, nodes)
            try:
                with session.no_autoflush:
                    built = [self._build(session, row, nodes, used, outcome, known)
                             for row in rows]
                session.flush()
                savepoint.commit()
            except DomainError:
                savepoint.rollback()
                built = []
                for row in rows:
                    savepoint = session.begin_nested()
                    try:
                        with session.no_autoflush:
                            one = self._build(session, row, nodes, used, outcome,
                                              self._existing(session, [row], nodes))
                        session.flush()
                        savepoint.commit()
                        built.append(one)
                    except DomainError as exc:
                        savepoint.rollback()
                        outcome.problems.append(Problem(row[0], self._header_of(exc.field),
                                                        str(exc)))
            for number, node, is_new in filter(None, built):
                nodes[number] = node
                outcome.created += is_new
                outcome.updated += not is_new
            done += len(rows)
            if progress:
                progress(done)

    def _build(self, session, row, nodes, used, outcome, known):
        """The node of one planned row, its values set (None when its parent row failed)."""
        number, values, parent = row
        parent_node = nodes.get(parent) if isinstance(parent, int) else parent
        if parent_node is None:
            outcome.problems.append(Problem(number, self._col("parent").header,
                                            f"上级（第 {parent} 行）有错误"))
            return None
        by_code, by_place = known
        found = by_code.get(values["code"]) if values.get("code") else \
            by_place.get((parent_node.id, values["name"]))
        node, is_new = (found, False) if found is not None else (Organization(), True)
        values = dict(values)
        if is_new and not values.get("code"):
            values["code"] = self._generated_code(parent_node, used)
        used.add(values.get("code") or node.code)
        session.add(node)
        for name, value in values.items():
            if name != "parent":
                setattr(node, name, value)
        node.parent = parent_node
        return number, node, is_new

    @staticmethod
    def _existing(session, rows, nodes):
        """The live nodes a level's rows may update, in two queries: those of their 编码, and
        those of their names under their (existing) parents — found among all nodes: the
        write check decides whether one may change them."""
        codes = [values["code"] for _, values, _ in rows if values.get("code")]
        parents = {(nodes.get(p) if isinstance(p, int) else p) for _, _, p in rows}
        parent_ids = [p.id for p in parents if p is not None and p.id is not None]
        names = [values["name"] for _, values, _ in rows if not values.get("code")]
        live = Organization.deleted_on.is_(None)
        by_code, by_place = {}, {}
        with unscoped(), session.no_autoflush:
            for start in range(0, len(codes), 500):
                for node in session.execute(select(Organization).where(
                        Organization.code.in_(codes[start:start + 500]), live)).scalars():
                    by_code[node.code] = node
            if parent_ids and names:
                for node in session.execute(select(Organization).where(
                        Organization.parent_id.in_(parent_ids), Organization.name.in_(set(names)),
                        live).order_by(Organization.id)).scalars():
                    by_place.setdefault((node.parent_id, node.name), node)
        return by_code, by_place

    @staticmethod
    def _generated_code(parent: Organization, used: set) -> str:
        """The parent's code and a two-digit (or longer) number: unique in the database and
        the file, within the column's 32 characters."""
        stem = (parent.code or "ORG")[:26]
        n = 1
        while f"{stem}{n:02d}" in used:
            n += 1
        code = f"{stem}{n:02d}"
        used.add(code)
        return code
