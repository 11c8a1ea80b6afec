"""各网格党员 (members_by_grid) equals a count made here: each member in scope with a 所在网格
node, credited to every live grid whose path its node's path starts with — for the district,
a community, a unit and the grid secretary."""
from collections import Counter

import pytest
from sqlalchemy import text

from tests.test_dashboard_figures import Scope, figure

pytestmark = pytest.mark.db


@pytest.mark.parametrize("username", ["zuzhibu", "shequ01", "danwei01"])
def test_members_by_grid_equals_an_independent_count(as_user, ctx, username):
    scope = Scope(ctx, username)
    members = scope.rows("SELECT g.path, t.is_red_grid_worker, t.is_household_center "
                         "FROM member t JOIN organization g ON g.id = t.group_id WHERE {scope}")
    grids = ctx.execute(text("SELECT id, name, path FROM organization "
                             "WHERE type = 'grid' AND deleted_on IS NULL")).all()
    counted = {}
    for path, red, household in members:
        for grid_id, name, grid_path in grids:
            if path.startswith(grid_path):
                n, r, h = counted.get(grid_id, (name, 0, 0, 0))[1:]
                counted[grid_id] = (name, n + 1, r + bool(red), h + bool(household))
    rows = figure(as_user, username, "members_by_grid")
    assert rows, f"{username}: no grid counted"
    # The CSV names grids (two communities may each have a 第1网格党支部): compare as a multiset.
    shown = Counter((r["grid"], int(r["members"]), int(r["red"]), int(r["household"]))
                    for r in rows)
    assert shown == Counter(counted.values())
