"""A chart of per-node figures (per community, per grid) at the size of what the viewer sees.

A district has ~100 communities and a city twelve districts: one bar per community is a row of
hairlines with labels on top of each other. So a chart's rows are grouped under the lowest node
that holds them all, one bar per node just below it — at district scope the streets, at a
street the communities, at city scope (several districts, no node above them) the districts —
and a bar above the rows' own node opens the dashboard at that node (the drill-down), where the
next level shows. Bars are sorted by their value, and a chart shows at most `MAX_BARS`: the rest
are summed into one last bar ("其余 N 个社区"), which lists nothing — its nodes are reached by
choosing the node above them, or by the figure's CSV, which keeps every row.

A bar is named by its node's short name where it has one (工农社区 for 工农社区党总支). The
grouping reads the tree's materialised paths (`/1/5/23/`) through the session: the tree is
every logged-in role's directory, and a node deleted since is left as its own bar.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from sqlalchemy import func, select

from app.models.org import Organization

MAX_BARS = 20
# How the summary bar names the nodes it sums (a node's type, in a word).
KIND_WORDS = {"district": "区", "street": "街道", "community": "社区", "grid": "网格",
              "building": "楼栋党小组", "household": "党员中心户"}


@dataclass
class Bar:
    """One bar: a node and the figure's rows under it. `own`: the node is the rows' own (a
    community of a per-community figure), whose bar lists its rows; a node above them is
    drilled into instead. `node_id` None: rows of no known node, or the summary of the rest."""

    node_id: int | None
    name: str
    kind: str = ""
    own: bool = True
    rows: list = field(default_factory=list)

    def total(self, key: str):
        return sum(row[key] or 0 for row in self.rows)


# The nodes one board has read so far (`nodes_read_once`): its figures name every community of
# a city (1,800) and its charts group them, and the grid chart its 5,400 grids — each read once.
_nodes_read: ContextVar[dict | None] = ContextVar("nodes_read", default=None)


@dataclass(frozen=True)
class Node:
    path: str
    name: str
    label: str  # the short name a node goes by where it has one (工农社区 for 工农社区党总支)
    kind: str


@contextmanager
def nodes_read_once():
    """Within it, `nodes_of` reads each node once (one board: its figures and charts)."""
    token = _nodes_read.set({})
    try:
        yield
    finally:
        _nodes_read.reset(token)


def nodes_of(session, ids) -> dict[int, Node]:
    """The nodes among `ids` the session reads (the tree is every role's directory), by id."""
    ids = {i for i in ids if i is not None}
    known = _nodes_read.get()
    missing = ids if known is None else ids - known.keys()
    found = {i: Node(path, name, label, kind) for i, path, name, label, kind in session.execute(
        select(Organization.id, Organization.path, Organization.name,
               func.coalesce(Organization.short_name, Organization.name), Organization.type)
        .where(Organization.id.in_(missing)))} if missing else {}
    if known is None:
        return found
    # A node not found (out of scope, gone) is remembered as such.
    known.update({i: found.get(i) for i in missing})
    return {i: known[i] for i in ids if known[i] is not None}


def _segments(path: str) -> list[int]:
    return [int(part) for part in path.strip("/").split("/") if part]


def grouped(rows: list[dict], key: str, paths: dict[int, str],
            nodes: dict[int, tuple[str, str]]) -> list[Bar]:
    """`rows` (each naming its node by `key`) as bars: the rows' own nodes when they are one, or
    the nodes just below the lowest node holding them all. `paths`: each row node's path;
    `nodes`: (name, type) of every node a path names."""
    placed = {row[key] for row in rows if row[key] in paths}
    chains = {node: _segments(paths[node]) for node in placed}
    common: list[int] = []
    if len(placed) == 1:  # one node: itself
        common = next(iter(chains.values()))[:-1]
    elif placed:
        first, *others = chains.values()
        for depth, node in enumerate(first):
            if any(len(chain) <= depth or chain[depth] != node for chain in others):
                break
            common.append(node)
    bars: dict[int | None, Bar] = {}
    for row in rows:
        node = row[key]
        chain = chains.get(node)
        # One node, or a node at the common one itself: the row's own node is its bar.
        top = node if chain is None or len(chain) <= len(common) + 1 else chain[len(common)]
        bar = bars.get(top)
        if bar is None:
            name, kind = nodes.get(top, ("—", ""))
            bar = bars[top] = Bar(top, name, kind, own=top == node)
        bar.own = bar.own and top == node
        bar.rows.append(row)
    return list(bars.values())


def capped(bars: list[Bar], value: Callable[[Bar], float | None]) -> list[Bar]:
    """Sorted by value (largest first, bars without one last), at most MAX_BARS: the rest summed
    into one last bar."""
    ranked = sorted(bars, key=lambda b: (value(b) is None, -(value(b) or 0), b.name,
                                         b.node_id or 0))
    if len(ranked) <= MAX_BARS:
        return ranked
    kept, rest = ranked[:MAX_BARS - 1], ranked[MAX_BARS - 1:]
    kinds = {b.kind for b in rest}
    word = KIND_WORDS.get(kinds.pop(), "") if len(kinds) == 1 else ""
    summary = Bar(None, f"其余{len(rest)}个{word or '组织'}", own=False,
                  rows=[row for bar in rest for row in bar.rows])
    return [*kept, summary]


def bars_of(session, rows: list[dict], key: str,
            value: Callable[[Bar], float | None]) -> list[Bar]:
    """A per-node figure's rows as a chart's bars (grouped, sorted and capped)."""
    # The rows' own nodes, then the nodes above them not read yet.
    found = nodes_of(session, {row[key] for row in rows})
    paths = {i: node.path for i, node in found.items()}
    nodes = {i: (node.label, node.kind) for i, node in found.items()}
    above = {n for path in paths.values() for n in _segments(path)} - nodes.keys()
    nodes.update((i, (node.label, node.kind)) for i, node in nodes_of(session, above).items())
    return capped(grouped(rows, key, paths, nodes), value)
