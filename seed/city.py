"""`flask seed demo --scale city`: a deterministic city for the performance work (issue 9).

Twelve districts (the first is the demo's 云溪区, code ``YX``, so the demo users and the
seed's own "already loaded" check work as at the demo scale), 10 streets each, 1,800
communities with grids and building groups, 30,000 units, 600,000 members, 200,000 resources,
300,000 needs, 100,000 micro-wishes, about 60,000 joint meetings with attendance, agendas,
resolutions and supervision notes, about 2,000,000 service records and as many point entries.

How it stays fast and small:
- rows are bulk-inserted in chunks, never as ORM objects: ``COPY … FROM STDIN`` on PostgreSQL,
  Core ``executemany`` elsewhere (SQLite, MariaDB); memory holds one chunk per table plus a few
  compact per-member arrays, not the rows;
- ids are assigned here (the tables are empty, PostgreSQL's sequences are moved past them at the
  end), so rows link to each other without reading anything back;
- 身份证号 are encrypted and keyed-hashed by `app.crypto`, exactly as the application
  does for every member;
- no per-row audit records: the rows are generated valid (statuses and their dates, ledger keys,
  receipt numbers written the way the models write them), and the seed leaves one audit record of
  kind import with the counts, as the demo scale does.

Everything is written in one transaction: a failed build leaves nothing behind. The same seed
always gives the same data for a given day (dates count back from today). ``fraction`` shrinks
every count (the tests build a thousandth of the city).
"""
from __future__ import annotations

import io
import time
from array import array
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

from sqlalchemy import Date, DateTime, func, select, text

from app import clock, crypto, rollups
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
    UnitRegistration,
)
from app.models.lists import (
    MicroWish,
    Need,
    Resource,
    ServiceItem,
    ensure_step_due,
    need_member,
    service_item_need,
)
from app.models.meetings import (
    CADENCE_DEFAULTS,
    AgendaItem,
    Attendance,
    BodyMember,
    JointBody,
    Meeting,
    Resolution,
    SupervisionNote,
    plan_key,
    resolution_co_unit,
)
from app.models.org import Dictionary, Member, Organization, Unit
from app.services import audit
from app.services.cobuild import quarter_of
from app.services.defaults import ensure_dictionary, ensure_indicators
from app.services.meetings import cadence_dates
from app.validators import id_number_check_char
from seed.cobuild import DONE, POSTS, at_morning
from seed.lists import NEEDS, RESOURCES, WISHES
from seed.meetings import (
    AGENDA,
    AGENDA_SIZE,
    DEADLINE_DAYS,
    DECISIONS,
    PROGRESS,
    RESOLUTIONS,
    SUPERVISION,
    _attendance,
    _minutes,
    _resolution_state,
)
from seed.names import PLACE, REGIONS, Names
from seed.users import DISTRICT_CODE, build_demo_users

DISTRICTS = ["云溪区", "青松区", "翠柳区", "丰泽区", "福安区", "和平区", "兴华区", "永宁区",
             "长乐区", "锦绣区", "东湖区", "南苑区"]
CHUNK = 10_000
# Months of meetings before this one (plus the plan to the end of next quarter): about 60,000
# meetings for 1,932 bodies holding a 月推进会, 季研讨会 and 年总结会 (no 旬例会 at this size).
MEETING_MONTHS = 17
BODY_UNITS = 10  # member units of a joint body
# City-scale point rules: one entry for the member and, when it has a work unit, one for the
# unit per certified record (2,000,000 records pay about as many entries).
CITY_RULES = [("SVC", "参加志愿服务（每次1分，每小时2分）", "member", 1, 2),
              ("UNIT_SVC", "在职党员服务回馈单位（每小时）", "unit", 0, 1)]
NEED_WEIGHTS = {"待受理": 4, "已受理": 4, "已派单": 6, "办理中": 8, "已办结": 22, "已回访": 50,
                "已驳回": 6}
WISH_WEIGHTS = {"待审核": 5, "待认领": 15, "已认领": 15, "已实现": 20, "已确认": 40, "已驳回": 5}
HOURS = [Decimal(h) for h in ("1.0", "1.5", "2.0", "2.0", "2.5", "3.0", "4.0")]
_BORN_FROM, _BORN_DAYS = date(1945, 1, 1), (date(2002, 12, 31) - date(1945, 1, 1)).days


@dataclass(frozen=True)
class City:
    districts: int = 12
    streets: int = 10  # per district
    communities: int = 15  # per street
    grids: int = 3  # per community
    buildings: int = 3  # per grid
    units: int = 30_000
    members: int = 600_000
    resources: int = 200_000
    needs: int = 300_000
    wishes: int = 100_000
    records: int = 2_000_000  # about: drawn per member

    @classmethod
    def scaled(cls, fraction: float) -> City:
        if fraction >= 1:
            return cls()
        side = fraction ** (1 / 3)  # the tree shrinks on each of its three levels
        full = cls()
        return cls(districts=max(2, round(full.districts * side)),
                   streets=max(2, round(full.streets * side)),
                   communities=max(2, round(full.communities * side)),
                   grids=2, buildings=2,
                   **{k: max(30, int(getattr(full, k) * fraction))
                      for k in ("units", "members", "resources", "needs", "wishes", "records")})


def _spread(total: int, parts: int, i: int) -> int:
    """The i-th of `parts` near-equal shares of `total`."""
    return total // parts + (1 if i < total % parts else 0)


class Progress:
    """One line per tenth of a stage: a bar, the count and the stage's rows per second."""

    def __init__(self, echo):
        self.echo, self.rows = echo, 0

    def stage(self, label: str, total: int):
        return _Stage(self, label, total)


class _Stage:
    def __init__(self, progress, label, total):
        self.progress, self.label, self.total = progress, label, max(total, 1)
        self.done, self.next, self.started = 0, self.total / 10, time.perf_counter()

    def step(self, n: int = 1) -> None:
        self.done += n
        if self.done >= self.next or self.done == self.total:
            self.next = self.done + self.total / 10
            self._show()

    def _show(self) -> None:
        if not self.progress.echo:
            return
        share = min(self.done / self.total, 1)
        bar = "#" * int(share * 20)
        rate = self.done / max(time.perf_counter() - self.started, 1e-6)
        self.progress.echo(f"  [{bar:<20}] {share:4.0%} {self.label} {self.done:,}/{self.total:,}"
                           f"（{rate:,.0f} 条/秒）")


class Writer:
    """Rows of one table, written in chunks: PostgreSQL's COPY, or the driver's executemany with
    the values converted by SQLAlchemy's own bind processors of each column type (stored exactly
    as the ORM stores them, without its per-row bookkeeping). Ids are given here, from the
    table's current maximum."""

    def __init__(self, conn, table, progress: Progress, writers: dict):
        self.conn, self.table, self.progress = conn, table, progress
        # The tables it points at, flushed first (PostgreSQL and MariaDB check at once).
        self.parents = [writers[name] for name in
                        {fk.column.table.name for fk in table.foreign_keys} - {table.name}
                        if name in writers]
        self.columns = [c.name for c in table.columns]
        # Every column, with the model's scalar default, in table order: a row is laid over it.
        self.template = {c.name: c.default.arg if c.default is not None and c.default.is_scalar
                         else None for c in table.columns}
        dialect = conn.dialect
        self.convert = [(i, proc) for i, c in enumerate(table.columns)
                        if (proc := _converter(c.type, dialect))]
        quote = dialect.identifier_preparer.quote
        mark = "?" if dialect.paramstyle in ("qmark", "numeric") else "%s"
        self.sql = (f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, self.columns))}) "
                    f"VALUES ({', '.join([mark] * len(self.columns))})")
        self.has_id = "id" in table.c
        self.last_id = conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar() \
            if self.has_id else 0
        self.rows: list[tuple] = []
        self.count = 0
        self.copy = conn.dialect.name == "postgresql"

    def next_id(self) -> int:
        self.last_id += 1
        return self.last_id

    def add(self, row: dict) -> int | None:
        """Queue a row; returns its id (given now unless the row brings one)."""
        if self.has_id and "id" not in row:
            row["id"] = self.next_id()
        full = {**self.template, **row}
        if len(full) != len(self.template):
            raise KeyError(f"{self.table.name} 没有这些列：{set(full) - set(self.template)}")
        self.rows.append(list(full.values()))
        if len(self.rows) >= CHUNK:
            self.flush()
        return row.get("id")

    def flush(self) -> None:
        if not self.rows:
            return
        for parent in self.parents:
            parent.flush()
        cursor = self.conn.connection.dbapi_connection.cursor()
        if self.copy:
            self._copy(cursor)
        else:
            for row in self.rows:
                for i, convert in self.convert:
                    row[i] = convert(row[i])
            cursor.executemany(self.sql, self.rows)
        cursor.close()
        self.count += len(self.rows)
        self.progress.rows += len(self.rows)
        self.rows = []

    def _copy(self, cursor) -> None:
        buffer = io.StringIO()
        for row in self.rows:
            buffer.write("\t".join(map(_copy_value, row)))
            buffer.write("\n")
        buffer.seek(0)
        columns = ", ".join(f'"{c}"' for c in self.columns)
        cursor.copy_expert(f'COPY "{self.table.name}" ({columns}) FROM STDIN', buffer)


def _sqlite_datetime(value):
    """SQLAlchemy's SQLite DATETIME text ('2026-01-02 03:04:05.000000'), in C rather than
    through its %-format: the same strings, a tenth of the time on millions of rows."""
    return value.isoformat(" ", "microseconds") if value is not None else None


def _sqlite_date(value):
    return value.isoformat() if value is not None else None


def _converter(type_, dialect):
    if dialect.name == "sqlite" and isinstance(type_, DateTime):
        return _sqlite_datetime
    if dialect.name == "sqlite" and isinstance(type_, Date):
        return _sqlite_date
    return type_.dialect_impl(dialect).bind_processor(dialect)


def _copy_value(value) -> str:
    """COPY's text format: \\N for NULL, backslash escapes for the separators."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return (value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                .replace("\r", "\\r"))
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat(" ")
    return str(value)


def seed_city(session, password: str, echo=print, fraction: float = 1.0) -> dict:
    """Build the city into an empty database (after `flask gongjian init`); returns the counts
    per table. The caller has checked that the database holds no data."""
    started, cpu = time.perf_counter(), time.process_time()
    size = City.scaled(fraction)
    names = Names(seed=2026)
    rng = names.rng
    ensure_dictionary(session)
    ensure_indicators(session)
    session.info[audit.SKIP_ROWS] = True
    conn = session.connection()
    dialect = conn.dialect.name
    cache = None
    if dialect == "sqlite":  # a larger page cache for the build, put back afterwards
        cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
        conn.exec_driver_sql("PRAGMA cache_size = -262144")
    progress = Progress(echo)
    writers: dict[str, Writer] = {}

    def writer(model_or_table) -> Writer:
        table = getattr(model_or_table, "__table__", model_or_table)
        if table.name not in writers:
            writers[table.name] = Writer(conn, table, progress, writers)
        return writers[table.name]

    today = clock.today()
    now = clock.utcnow().replace(microsecond=0)
    stamp = {"created_on": now, "changed_on": now}
    if echo:
        echo(f"正在生成城市规模数据（比例 {fraction:g}）…")

    ctx = SimpleNamespace(rng=rng, names=names, today=today, now=now, stamp=stamp, size=size,
                          writer=writer, progress=progress, conn=conn)
    _tree(ctx, DISTRICT_CODE)
    _units_and_members(ctx)
    _lists(ctx)
    _meetings(ctx)
    _cobuild(ctx)
    for w in writers.values():
        w.flush()
    if dialect == "postgresql":  # the sequences go past the ids given here
        for w in writers.values():
            if w.has_id:
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{w.table.name}', 'id'), "
                                  f"(SELECT max(id) FROM \"{w.table.name}\"))"))
    counts = {name: w.count for name, w in writers.items()}
    ensure_step_due(conn, always=True)  # the needs went in by COPY and executemany
    # The demo users, linked as at the demo scale, last: FAB's add_user commits.
    build_demo_users(ctx.streets[0][0], ctx.communities[0].id, [u.id for u in ctx.units[:3]],
                     ctx.first_member.id, ctx.grids[0][0], password)
    audit.record(session, "import", "seed", changes={"scale": "city", "fraction": fraction,
                                                     **counts})
    session.info.pop(audit.SKIP_ROWS, None)
    rollups.rebuild(session.connection())  # the rows above went in by COPY and executemany, unmarked
    session.commit()
    elapsed = time.perf_counter() - started
    _after(dialect, cache)
    if echo:
        echo(f"城市规模数据加载完成：共 {progress.rows:,} 行，用时 {elapsed:.0f} 秒（本进程 CPU "
             f"{time.process_time() - cpu:.0f} 秒），{progress.rows / elapsed:,.0f} 行/秒。")
        echo("  " + "、".join(f"{name} {n:,}" for name, n in counts.items()))
    return counts


def _after(dialect: str, cache) -> None:
    """Statistics for the planner, the page cache put back, SQLite's WAL emptied."""
    with db.engine.connect() as conn:
        if dialect == "sqlite":
            # A full ANALYZE (~10 s on the city): an approximate one (analysis_limit) guessed
            # 2,000,000 needs of 300,000 and that `deleted_on IS NULL` was selective, so every
            # list fetched all live rows and sorted them instead of walking its order's index.
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
            raw = conn.connection.dbapi_connection
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            if cache is not None:
                raw.execute(f"PRAGMA cache_size = {int(cache)}")
        elif dialect == "postgresql":
            conn.exec_driver_sql("ANALYZE")
            conn.commit()


# --- the organisation tree ----------------------------------------------------------------------

def _tree(ctx, first_code: str) -> None:
    rng, names, size, stamp = ctx.rng, ctx.names, ctx.size, ctx.stamp
    orgs = ctx.writer(Organization)
    total = size.districts * size.streets * size.communities
    stage = ctx.progress.stage("党组织（社区）", total)
    ctx.districts, ctx.streets, ctx.communities = [], [], []
    ctx.grids, ctx.groups = [], []  # per community index: grid ids, building ids

    def node(parent, type_, code, name, district_name, **extra):
        node_id = orgs.next_id()
        path = f"{parent[1] if parent else '/'}{node_id}/"
        row = {"id": node_id, "parent_id": parent[0] if parent else None, "path": path,
               "depth": path.count("/") - 2, "type": type_, "code": code, "name": name,
               "secretary": names.person(), "phone": names.phone(),
               "address": names.address(district_name), "active": True, **extra, **stamp}
        orgs.add(row)
        return node_id, path, name, row["secretary"]

    for d in range(size.districts):
        district_name = DISTRICTS[d % len(DISTRICTS)] + ("" if d < len(DISTRICTS) else str(d))
        code = first_code if d == 0 else f"D{d + 1:02d}"
        district = node(None, "district", code, f"{district_name}委", district_name)
        ctx.districts.append((*district, district_name))
        for s in range(size.streets):
            street = node(district, "street", f"{code}{s + 1:02d}",
                          f"{names.place()}街道党工委", district_name)
            ctx.streets.append((*street, d))
            used = set()
            for c in range(size.communities):
                while True:  # names repeat across a city, not within a street
                    i, j = rng.randrange(0, len(PLACE), 2), rng.randrange(1, len(PLACE), 2)
                    place = PLACE[i] + PLACE[j]
                    if place not in used:
                        used.add(place)
                        break
                ccode = f"{code}{s + 1:02d}{c + 1:02d}"
                community = node(street, "community", ccode, f"{place}社区党委", district_name)
                ctx.communities.append(SimpleNamespace(
                    id=community[0], path=community[1], name=community[2],
                    secretary=community[3], district=d, street=street[0],
                    index=len(ctx.communities)))
                grids, groups = [], []
                for g in range(size.grids):
                    grid = node(community, "grid", f"{ccode}G{g + 1}",
                                f"{place}社区第{g + 1}网格党支部", district_name, grid_kind="城市")
                    grids.append(grid[0])
                    for b in range(size.buildings):
                        groups.append(node(grid, "building", f"{ccode}G{g + 1}B{b + 1}",
                                           f"{place}社区第{g + 1}网格{b + 1}号楼党小组",
                                           district_name)[0])
                ctx.grids.append(grids)
                ctx.groups.append(groups)
                stage.step()


# --- units and members --------------------------------------------------------------------------

def _units_and_members(ctx) -> None:
    rng, names, size, stamp = ctx.rng, ctx.names, ctx.size, ctx.stamp
    communities = ctx.communities
    categories = {code: id_ for code, id_ in ctx.conn.execute(
        select(Dictionary.code, Dictionary.id).where(Dictionary.kind == "unit_category"))}

    # Where the units stand: the first two in the first community (danwei01, danwei02), the
    # third in the last one, another district (danwei03).
    placement = {0: 0, 1: 0, 2: len(communities) - 1}
    plan, used = [], set()
    for n in range(size.units):
        community = communities[placement.get(n, rng.randrange(len(communities)))]
        district = ctx.districts[community.district][4]
        category, name, party_type = names.unit(district, n)
        if name in used:
            name = f"{community.name[:2]}{name}"
        while name in used:
            name = f"{name[:-4]}{rng.randint(2, 99)}{name[-4:]}" if name.endswith("有限公司") \
                else f"{community.name[:2]}{rng.randint(2, 999)}{name}"
        used.add(name)
        plan.append(SimpleNamespace(
            index=n, name=name, category=category, party_type=party_type,
            community=community.index, community_id=community.id, district=community.district,
            leader_name=names.person(), leader_title=names.title(),
            liaison_name=names.person(), contact_phone=names.phone(),
            address=names.address(district), party_member_count=0))
    by_district: dict[int, list[int]] = {}
    for unit in plan:
        by_district.setdefault(unit.district, []).append(unit.index)

    # Who lives where and works for whom, decided before the units are written (their
    # member counts) and kept as compact arrays for the lists and the service records.
    m = size.members
    ctx.m_community = array("i", bytes(4 * m))  # community index
    ctx.m_unit = array("i", bytes(4 * m))  # unit index + 1, 0 for none
    ctx.m_group = array("i", bytes(4 * m))  # building group id
    ctx.m_category = bytearray(m)  # index into CATEGORIES
    for n in range(m):
        c = 0 if n < 10 else rng.randrange(len(communities))
        ctx.m_community[n] = c
        ctx.m_group[n] = rng.choice(ctx.groups[c])
        if n < 20:
            unit = n % 3
        elif rng.random() < 0.6:
            home = by_district.get(communities[c].district)
            unit = rng.choice(home) if home and rng.random() < 0.8 else rng.randrange(len(plan))
        else:
            unit = None
        if unit is not None:
            ctx.m_unit[n] = unit + 1
            plan[unit].party_member_count += 1
        else:
            ctx.m_category[n] = rng.choice((1, 1, 2, 3))

    units = ctx.writer(Unit)
    stage = ctx.progress.stage("驻区单位", len(plan))
    for unit in plan:
        code = names.credit_code()
        unit.id = units.add({
            "name": unit.name, "credit_code": code, "credit_code_key": code,
            "category_id": categories[unit.category], "community_id": unit.community_id,
            "address": unit.address, "party_org_name": f"{unit.name}{unit.party_type}",
            "party_org_type": unit.party_type, "party_member_count": unit.party_member_count,
            "leader_name": unit.leader_name, "leader_title": unit.leader_title,
            "liaison_name": unit.liaison_name, "contact_phone": unit.contact_phone,
            "status": "在册", **stamp})
        stage.step()
    units.flush()
    ctx.units = plan

    members = ctx.writer(Member)
    ctx.member_base = members.last_id + 1  # member n has id member_base + n
    ctx.first_member = SimpleNamespace(id=ctx.member_base)
    ctx.members_of = [array("i") for _ in communities]
    encrypt, keyed_hash = crypto.encrypt, crypto.keyed_hash
    stage = ctx.progress.stage("党员", m)
    for n in range(m):
        number = _id_number(rng, n)
        digest = keyed_hash(number)
        unit = ctx.m_unit[n]
        members.add({
            "id": ctx.member_base + n, "name": names.person(),
            "gender": "男" if int(number[16]) % 2 else "女",
            "id_number_enc": encrypt(number), "id_number_hash": digest, "id_number_key": digest,
            "phone": names.phone(), "work_unit_id": plan[unit - 1].id if unit else None,
            "community_id": communities[ctx.m_community[n]].id, "group_id": ctx.m_group[n],
            "category": CATEGORIES[ctx.m_category[n]], "status": "正常",
            "is_household_center": rng.random() < 0.03, "is_red_grid_worker": rng.random() < 0.05,
            "skills": None, **stamp})
        ctx.members_of[ctx.m_community[n]].append(n)
        stage.step()


CATEGORIES = ("在职", "退休", "流动", "在籍")


def _id_number(rng, n: int) -> str:
    """The n-th member's 身份证号, unique by construction (no set of 600,000 to check against):
    n picks the region, the birthday (a permutation of the days) and the hundreds of the
    sequence number; the rest of the sequence is random."""
    region, rest = REGIONS[n % len(REGIONS)], n // len(REGIONS)
    day, block = (rest % _BORN_DAYS) * 7919 % _BORN_DAYS, rest // _BORN_DAYS
    born = _BORN_FROM + timedelta(days=day)
    body = f"{region}{born:%Y%m%d}{block * 100 + rng.randrange(100):03d}"
    return body + id_number_check_char(body)


# --- the three lists and micro-wishes -----------------------------------------------------------

def _weighted(weights: dict[str, int]):
    return list(weights), list(weights.values())


def _lists(ctx) -> None:
    rng, names, size, stamp, now = ctx.rng, ctx.names, ctx.size, ctx.stamp, ctx.now
    conn = ctx.conn
    cats = {kind: dict(conn.execute(select(Dictionary.label, Dictionary.id)
                                    .where(Dictionary.kind == kind)).all())
            for kind in ("resource_category", "need_category")}
    year = now.year
    resources, items = ctx.writer(Resource), ctx.writer(ServiceItem)
    stage = ctx.progress.stage("资源与服务项目", len(ctx.units))
    item_of_community: dict[int, int] = {}
    for n, unit in enumerate(ctx.units):
        for k in range(_spread(size.resources, len(ctx.units), n)):
            cat, title, content = RESOURCES[(n + k) % len(RESOURCES)]
            status = ("已发布", "已发布", "已发布", "待审核", "草稿", "已驳回")[(n + k) % 6]
            resources.add({
                "unit_id": unit.id, "year": year - (k % 3 == 2), "category_id":
                cats["resource_category"][cat], "title": title, "content": content,
                "quantity": rng.randint(1, 50), "measure": "项", "contact": unit.liaison_name,
                "phone": unit.contact_phone, "status": status,
                "reject_reason": "信息不完整，请补充可用时间" if status == "已驳回" else None,
                **stamp})
        if n % 3 != 2:
            cat, title, content = NEEDS[n % len(NEEDS)]
            status = ("已发布", "进行中", "已完成", "待审核", "草稿")[n % 5]
            item_id = items.add({
                "provider_unit_id": unit.id, "year": year,
                "category_id": cats["need_category"][cat],
                "title": f"{unit.name[:6]}{title}项目", "content": content,
                "capacity": rng.randint(5, 30), "points": rng.choice((5, 10, 20)),
                "start_date": date(year, 1, 1) + timedelta(days=rng.randint(0, 120)),
                "end_date": date(year, 12, 31), "place": unit.address,
                "commitment": f"全年开展{title}不少于4次",
                "fulfilment": "已按承诺完成" if status == "已完成" else None, "status": status,
                **stamp})
            if status in ("已发布", "进行中", "已完成"):
                item_of_community.setdefault(unit.community, item_id)
        stage.step()

    units_of: dict[int, list] = {}
    for unit in ctx.units:
        units_of.setdefault(unit.community, []).append(unit)
    needs, links, dispatched = ctx.writer(Need), ctx.writer(service_item_need), \
        ctx.writer(need_member)
    statuses, weights = _weighted(NEED_WEIGHTS)
    path = ["待受理", "已受理", "已派单", "办理中", "已办结", "已回访"]
    stage = ctx.progress.stage("需求清单", size.needs)
    for c, community in enumerate(ctx.communities):
        local = units_of.get(c) or ctx.units[:1]
        for k in range(_spread(size.needs, len(ctx.communities), c)):
            status = rng.choices(statuses, weights)[0]
            cat, title, content = NEEDS[(c + k) % len(NEEDS)]
            open_ = status in ("待受理", "已受理", "已派单", "办理中")
            created = now - timedelta(days=rng.randint(1, 40) if open_ else rng.randint(10, 365),
                                      hours=rng.randint(0, 23))
            row = {"source": ("居民", "网格员", "社区")[k % 3], "requester_name": names.person(),
                   "requester_phone": names.phone(), "community_id": community.id,
                   "grid_id": rng.choice(ctx.grids[c]) if k % 2 else None,
                   "category_id": cats["need_category"][cat], "title": title,
                   "content": content, "urgency": ("一般", "一般", "重大", "复杂")[k % 4],
                   "status": status, "created_on": created, "changed_on": now}
            reached = path.index(status) if status != "已驳回" else -1
            if status == "已驳回":
                row["reject_reason"] = "不属于社区受理范围，已引导至相关部门"
            if reached >= 1:
                row["accepted_on"] = created + timedelta(hours=1)
            if reached >= 2:
                unit = local[k % len(local)]
                row.update(assigned_unit_id=unit.id, dispatch_note="请于时限内办结并反馈",
                           dispatched_on=created + timedelta(hours=2),
                           deadline=created + timedelta(days=rng.choice((3, 7, 15))))
            if reached >= 3:
                row["taken_on"] = created + timedelta(hours=3)
            if reached >= 4:  # closed: on time mostly, late now and then
                row.update(result="已协调解决，居民表示认可",
                           completed_on=created + timedelta(days=rng.randint(1, 8)),
                           deadline=created + timedelta(days=5))
            if reached >= 5:
                row.update(satisfaction=rng.choice((1, 3, 4, 5, 5, 5)), visitor=names.person(),
                           visited_on=(row["completed_on"] + timedelta(days=2)).date(),
                           visit_comment="回访满意")
            need_id = needs.add(row)
            if reached >= 3 and c in item_of_community and rng.random() < 0.3:
                links.add({"service_item_id": item_of_community[c], "need_id": need_id})
            stage.step()
    # For the demo users: a need the first liaison filed, one dispatched to the first member.
    first = ctx.communities[0]
    needs.add({"source": "驻区单位", "community_id": first.id,
               "category_id": cats["need_category"]["其他"], "title": "单位周边停车难",
               "content": "希望协调周边停车位", "urgency": "一般", "status": "待受理",
               "submitted_by_unit_id": ctx.units[0].id, **stamp})
    need_id = needs.add({"source": "居民", "community_id": first.id,
                         "category_id": cats["need_category"]["助老扶幼"], "title": "陪同老人就医",
                         "content": "行动不便老人需陪同就医", "urgency": "重大", "status": "已派单",
                         "accepted_on": now, "dispatched_on": now,
                         "deadline": now + timedelta(days=1), **stamp})
    dispatched.add({"need_id": need_id, "member_id": ctx.first_member.id})

    wishes = ctx.writer(MicroWish)
    statuses, weights = _weighted(WISH_WEIGHTS)
    stage = ctx.progress.stage("微心愿", size.wishes)
    for c, community in enumerate(ctx.communities):
        residents = ctx.members_of[c]
        for k in range(_spread(size.wishes, len(ctx.communities), c)):
            status = rng.choices(statuses, weights)[0]
            created = now - timedelta(days=rng.randint(15, 365))
            row = {"resident_name": names.person(), "resident_phone": names.phone(),
                   "community_id": community.id, "content": WISHES[(c + k) % len(WISHES)],
                   "grid_id": rng.choice(ctx.grids[c]) if k % 3 == 0 else None,
                   "status": status, "created_on": created, "changed_on": now}
            if status in ("已认领", "已实现", "已确认"):
                local = units_of.get(c)
                if local and k % 2 or not residents:
                    row["claimant_unit_id"] = (local or ctx.units)[0].id
                else:
                    row["claimant_member_id"] = ctx.member_base + rng.choice(residents)
                row["claimed_on"] = created + timedelta(days=rng.randint(1, 5))
            if status in ("已实现", "已确认"):
                row.update(fulfilled_on=row["claimed_on"] + timedelta(days=rng.randint(1, 5)),
                           proof="已送达，居民签收")
            if status == "已确认":
                row.update(feedback="非常感谢！",
                           confirmed_on=row["fulfilled_on"] + timedelta(days=1))
            if status == "已驳回":
                row["reject_reason"] = "心愿内容不符合微心愿范围"
            wishes.add(row)
            stage.step()


# --- joint meetings -----------------------------------------------------------------------------

def _meetings(ctx) -> None:
    rng, stamp, today = ctx.rng, ctx.stamp, ctx.today
    month = today.month - 1 - MEETING_MONTHS
    start = date(today.year + month // 12, month % 12 + 1, 1)
    quarter_end = ((today.month - 1) // 3 + 2) * 3
    end_year, end_month = today.year + (quarter_end - 1) // 12, (quarter_end - 1) % 12 + 1
    end = (date(end_year + end_month // 12, end_month % 12 + 1, 1) - timedelta(days=1))
    cadence = JointBody(**{**CADENCE_DEFAULTS, "xun_enabled": False})  # transient: a template
    dates = cadence_dates(cadence, start, end)

    by_community: dict[int, list] = {}
    by_street: dict[int, list] = {}
    by_district: dict[int, list] = {}
    for unit in ctx.units:
        community = ctx.communities[unit.community]
        by_community.setdefault(unit.community, []).append(unit)
        by_street.setdefault(community.street, []).append(unit)
        by_district.setdefault(unit.district, []).append(unit)

    def top(units):
        return sorted(units, key=lambda u: -u.party_member_count)[:BODY_UNITS]

    plans = []
    for c, community in enumerate(ctx.communities):
        if by_community.get(c):
            plans.append((community, f"{community.name.removesuffix('党委')}党建联席会", "社区",
                          by_community[c][:BODY_UNITS]))
    for street_id, _path, name, secretary, _d in ctx.streets:
        if by_street.get(street_id):
            host = SimpleNamespace(id=street_id, name=name, secretary=secretary)
            plans.append((host, f"{name.removesuffix('党工委')}共建联合会", "街道",
                          top(by_street[street_id])))
    for d, (district_id, _path, name, secretary, district_name) in enumerate(ctx.districts):
        if by_district.get(d):
            host = SimpleNamespace(id=district_id, name=name, secretary=secretary)
            plans.append((host, f"{district_name}区域化党建联席会", "区", top(by_district[d])))

    bodies, body_members = ctx.writer(JointBody), ctx.writer(BodyMember)
    meetings, attendance = ctx.writer(Meeting), ctx.writer(Attendance)
    agenda, resolutions = ctx.writer(AgendaItem), ctx.writer(Resolution)
    co_units, notes = ctx.writer(resolution_co_unit), ctx.writer(SupervisionNote)
    stage = ctx.progress.stage("联席会议（联席会）", len(plans))
    for host, name, level, local in plans:
        body_id = bodies.add({
            "name": name, "level": level, "host_id": host.id,
            "description": f"由{host.name}牵头，辖区驻区单位参加的共驻共建议事协调机制",
            **CADENCE_DEFAULTS, "xun_enabled": False, **stamp})
        for k, unit in enumerate(local):
            role = "副召集人" if k == 0 else ("兼职委员" if rng.random() < 0.3 else "成员单位")
            body_members.add({"body_id": body_id, "unit_id": unit.id, "role": role,
                              "representative": unit.leader_name,
                              "representative_title": unit.leader_title,
                              "member_key": f"{body_id}:{unit.id}", **stamp})
        place = f"{host.name.removesuffix('党委').removesuffix('党工委')}党群服务中心会议室"
        for type_, planned in dates:
            row = {"id": meetings.next_id(), "body_id": body_id, "type": type_,
                   "planned_date": planned, "cadence_date": planned,
                   "plan_key": plan_key(body_id, type_, planned), "place": place,
                   "chair": host.secretary, "status": "计划中", **stamp}
            children = []
            if planned < today and rng.random() < 0.04:
                row.update(status="已取消", cancel_reason="与上级部署的重点工作冲突，顺延至下次会议")
            elif planned < today:
                children = _held(ctx, row, host, local, type_, planned, attendance, agenda,
                                 resolutions, co_units, notes)
            meetings.add(row)
            for target, child in children:  # after their meeting, which they point at
                target.add(child)
        stage.step()


def _held(ctx, row, host, local, type_, planned, attendance, agenda, resolutions, co_units,
          notes) -> list[tuple[Writer, dict]]:
    """A meeting that took place: its row completed, and the rows of its attendance, agenda,
    resolutions and their supervision, to be written after it."""
    rng, names, stamp, today = ctx.rng, ctx.names, ctx.stamp, ctx.today
    children = []
    held = min(planned + timedelta(days=rng.choice((0, 0, 0, 0, 1, 2))), today)
    row.update(status="已召开", held_on=held, recorder=names.person())
    present, absent = [], []
    for unit, mark in zip(local, _attendance(rng, names, None, type_, local, stamp)):
        mark.update(meeting_id=row["id"], attendance_key=f"{row['id']}:{unit.id}")
        children.append((attendance, mark))
        (present if mark["status"] in ("出席", "迟到") else absent).append(unit)
    topics = rng.sample(AGENDA, rng.randint(*AGENDA_SIZE[type_]))
    for seq, topic in enumerate(topics, start=1):
        proposer = rng.choice(local) if rng.random() < 0.5 else None
        children.append((agenda, {"meeting_id": row["id"], "seq": seq, "title": topic,
                    "proposing_unit_id": proposer.id if proposer else None,
                    "description": f"{proposer.name if proposer else host.name}提出：{topic}。",
                    **stamp}))
    decided = []
    for _ in range(rng.randint(*RESOLUTIONS[type_])):
        lead = rng.choice(local)
        others = [u for u in local if u is not lead]
        co = rng.sample(others, min(len(others), rng.choice((0, 1, 1, 2))))
        deadline = held + timedelta(days=rng.randint(*DEADLINE_DAYS[type_]))
        text_ = rng.choice(DECISIONS)
        status, closed_on = _resolution_state(rng, held, deadline, today)
        rid = resolutions.next_id()
        children.append((resolutions, {
                               "id": rid, "meeting_id": row["id"],
                               "content": f"由{lead.name}牵头{text_}",
                               "lead_unit_id": lead.id, "deadline": deadline, "status": status,
                               "closed_on": closed_on,
                               "result": "已按要求完成，经回访群众满意" if closed_on else None,
                               **stamp}))
        children += [(co_units, {"resolution_id": rid, "unit_id": unit.id}) for unit in co]
        decided.append((lead, co, text_, deadline))
        if status == "待办":
            continue
        first = min(held + timedelta(days=1), today)
        last = max(first, min(closed_on or today, today))
        for k, day in enumerate(sorted(first + timedelta(days=rng.randint(0, (last - first).days))
                                       for _ in range(rng.randint(1, 3)))):
            own = rng.random() < 0.6
            children.append((notes, {
                "resolution_id": rid, "note_date": day, "unit_id": lead.id if own else None,
                "author": names.person(), "content": rng.choice(PROGRESS if own else SUPERVISION),
                "progress": min(100, 30 * (k + 1)) if own else None, **stamp}))
    row["minutes"] = _minutes(row, host, present, absent, topics, decided)
    return children


# --- co-building: agreements, registrations, posts, service records and points -------------------

def _cobuild(ctx) -> None:
    rng, stamp, today = ctx.rng, ctx.stamp, ctx.today
    communities, units = ctx.communities, ctx.units
    rules_w = ctx.writer(PointRule)
    rules = []
    for code, name, subject, per_event, per_hour in CITY_RULES:
        rule = SimpleNamespace(id=None, code=code, name=name, subject=subject,
                               per_event=Decimal(per_event), per_hour=Decimal(per_hour))
        rule.id = rules_w.add({"code": code, "name": name, "subject": subject,
                               "event": "service_record", "points_per_event": rule.per_event,
                               "points_per_hour": rule.per_hour, "active": True, **stamp})
        rules.append(rule)

    agreements, unit_regs = ctx.writer(Agreement), ctx.writer(UnitRegistration)
    stage = ctx.progress.stage("共建协议与单位报到", len(units))
    for n, unit in enumerate(units):
        roll = rng.random()
        start = today - timedelta(days=rng.randint(200, 900))
        end, status = start + timedelta(days=3 * 365), "已签订"
        if n == 0 or 0.80 <= roll < 0.88:
            end = today + timedelta(days=20 if n == 0 else rng.randint(1, 29))
        elif roll >= 0.95:
            status, start = "草拟", today + timedelta(days=rng.randint(1, 30))
            end = start + timedelta(days=3 * 365)
        elif roll >= 0.88:
            end = today - timedelta(days=rng.randint(1, 120))  # lapsed: 已到期 by its dates
            start = end - timedelta(days=3 * 365)
        agreements.add({
            "community_id": unit.community_id, "unit_id": unit.id,
            "title": f"{communities[unit.community].name}与{unit.name}共驻共建协议",
            "signed_on": None if status == "草拟" else start - timedelta(days=rng.randint(0, 10)),
            "valid_from": start, "valid_to": end, "commitments": DEFAULT_COMMITMENTS,
            "yearly_target": rng.randint(3, 12), "status": status, **stamp})
        roll = rng.random()
        if n < 3 or roll < 0.96:
            status = "待确认" if n >= 3 and roll >= 0.90 else "已报到"
            day = today - timedelta(days=rng.randint(120, 700))
            rid = unit_regs.next_id()
            unit_regs.add({
                "id": rid, "unit_id": unit.id, "community_id": unit.community_id,
                "registered_on": day, "receipt_no": f"DW{day.year}{rid:06d}", "status": status,
                "active_key": str(unit.id),
                "confirmed_on": at_morning(min(day + timedelta(days=rng.randint(1, 7)), today))
                if status == "已报到" else None, **stamp})
        stage.step()

    # 党员报到 of in-service members; most units have all of theirs registered.
    diligent = [n < 3 or rng.random() < 0.75 for n in range(len(units))]
    registered = array("i", bytes(4 * len(ctx.m_unit)))  # registration day's ordinal, 0: none
    member_regs = ctx.writer(MemberRegistration)
    stage = ctx.progress.stage("党员报到", len(ctx.m_unit))
    for n, unit in enumerate(ctx.m_unit):
        stage.step()
        if not unit:
            continue
        roll = 0.0 if diligent[unit - 1] or n == 0 else rng.random()
        if roll >= 0.85:
            continue
        status = "待确认" if roll >= 0.75 else "已报到"
        day = today - timedelta(days=rng.randint(120, 700))
        rid = member_regs.next_id()
        member_regs.add({
            "id": rid, "member_id": ctx.member_base + n,
            "community_id": communities[ctx.m_community[n]].id, "group_id": ctx.m_group[n],
            "registered_on": day, "certificate_no": f"DY{day.year}{rid:06d}", "status": status,
            "active_key": str(ctx.member_base + n),
            "confirmed_on": at_morning(min(day + timedelta(days=rng.randint(1, 7)), today))
            if status == "已报到" else None, **stamp})
        if status == "已报到":
            registered[n] = day.toordinal()

    # Service posts in every community, claimed by registered members up to their headcount.
    conn = ctx.conn
    post_categories = dict(conn.execute(select(Dictionary.code, Dictionary.id)
                                        .where(Dictionary.kind == "post_category")).all())
    posts_w = ctx.writer(ServicePost)
    posts_of = []  # per community: [post id, headcount, claimed, row]
    for community in communities:
        local = []
        for category, name, skill in rng.sample(POSTS, 5):
            row = {"community_id": community.id, "name": name,
                   "category_id": post_categories[category], "skill": skill or None,
                   "headcount": rng.randint(4, 12), "claimed": 0, "active": True,
                   "description": f"{name}：{DONE[rng.randrange(len(DONE))]}等", **stamp}
            row["id"] = posts_w.next_id()
            local.append([row["id"], row["headcount"], 0, row])
        posts_of.append(local)
    claims = []  # written after the posts, whose claimed counts they make
    held = {}  # member index → (post id, claimed on)
    for n, day in enumerate(registered):
        if not day or (n and rng.random() >= 0.25):
            continue
        open_posts = [p for p in posts_of[ctx.m_community[n]] if p[2] < p[1]]
        if not open_posts:
            continue
        post = rng.choice(open_posts)
        claimed_on = min(date.fromordinal(day) + timedelta(days=rng.randint(0, 20)), today)
        withdrawn = n > 0 and rng.random() < 0.05
        if not withdrawn:
            post[2] += 1
            held[n] = (post[0], claimed_on)
        member_id = ctx.member_base + n
        claims.append({"member_id": member_id, "post_id": post[0], "claimed_on": claimed_on,
                      "status": "已退出" if withdrawn else "已认领",
                      "withdrawn_on": min(claimed_on + timedelta(days=60), today)
                      if withdrawn else None,
                      "active_key": None if withdrawn else f"{post[0]}:{member_id}", **stamp})
    for local in posts_of:
        for post_id, _headcount, taken, row in local:
            row["claimed"] = taken
            posts_w.add(row)
    claims_w = ctx.writer(PostClaim)
    for claim in claims:
        claims_w.add(claim)

    # A year of service: retirees serve more often than those at work; certified once past
    # (a few rejected, a few waiting), and each certification paid as `pay_service_record` does.
    records, entries = ctx.writer(ServiceRecord), ctx.writer(PointEntry)
    members = len(ctx.m_unit)
    per_member = 2 * ctx.size.records / members / (0.35 * 0.6 + 0.8 * 0.4) / 2
    stage = ctx.progress.stage("服务记录与积分流水", members)
    for n in range(members):
        stage.step()
        unit = ctx.m_unit[n]
        if n and rng.random() >= (0.35 if unit else 0.8):
            continue
        member_id = ctx.member_base + n
        community_id = communities[ctx.m_community[n]].id
        post = held.get(n)
        for _ in range(rng.randint(1, max(1, round(2 * per_member - 1)))):
            served = today - timedelta(days=rng.randint(0, 364))
            if post and served < post[1]:
                served = post[1]
            age, roll = (today - served).days, rng.random()
            if age > 20:
                status = "已认证" if roll < 0.74 else ("已驳回" if roll < 0.78 else "待认证")
            else:
                status = "已认证" if roll < 0.3 else "待认证"
            hours = rng.choice(HOURS)
            certified = at_morning(min(served + timedelta(days=rng.randint(1, 10)), today)) \
                if status == "已认证" else None
            rid = records.add({
                "member_id": member_id, "served_on": served, "hours": hours,
                "post_id": post[0] if post else None, "description": rng.choice(DONE),
                "status": status, "certified_on": certified, "pay_cycle": 1 if certified else 0,
                "reject_reason": "服务内容与岗位不符，请补充说明后重新提交"
                if status == "已驳回" else None, **stamp})
            if not certified:
                continue
            for rule in rules:
                if rule.subject == "member":
                    kind, subject_id = "member", member_id
                elif unit:
                    kind, subject_id = "unit", units[unit - 1].id
                else:
                    continue
                entries.add({
                    "created_on": certified, "changed_on": certified, "subject_type": kind,
                    "member_id": subject_id if kind == "member" else None,
                    "unit_id": subject_id if kind == "unit" else None, "rule_id": rule.id,
                    "kind": "pay",
                    "delta": (rule.per_event + rule.per_hour * hours).quantize(Decimal("0.01")),
                    "reason": f"服务记录认证：{served} 服务{hours}小时（{rule.name}）",
                    "source_type": "service_record", "source_id": rid, "cycle": 1,
                    "period": quarter_of(served), "community_id": community_id,
                    "entry_key": PointEntry.key("service_record", rid, kind, subject_id,
                                                rule.id, 1, "pay")})
