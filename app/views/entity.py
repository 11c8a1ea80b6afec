"""What a business page (EntityView) and its REST resource (EntityApi) share, as FAB's
`BaseModelView` serves both its ModelView and ModelRestApi: a model declares itself (`model =
Member`), and from it come the scoped data interface, the permission name both share, the
Chinese labels, and the one flush that runs business rules and scope before FAB commits."""
from __future__ import annotations

import re

from flask import abort, current_app, request

from app.errors import ID_RANGE, committed
from app.models.base import Entity, labels_of
from app.security.scope import may_write
from app.views.interface import ScopedInterface

# One permission per operation, shared by a resource's view and API (ARCHITECTURE.md).
# A workflow move needs read access here; the transition table then says who may make it.
VIEW_PERMISSIONS = {
    "list": "read", "show": "read", "download": "read", "choices": "read", "transition": "read",
    "add": "add", "edit": "edit", "delete": "delete", "muldelete": "delete",
    "export": "export", "import_page": "import", "import_template": "import",
    "import_report": "import",
}
API_PERMISSIONS = {
    "get_list": "read", "get": "read", "info": "read", "transition": "read",
    "post": "add", "put": "edit", "delete": "delete",
}


class EntityBase:
    """The shared half of EntityView and EntityApi (mixed in before FAB's class)."""

    model: type[Entity] = None
    page_size = 20
    # Extra endpoints and the operation each needs, e.g. {"link": "edit"}.
    permission_of: dict[str, str] = {}
    # Set by each kind: its operations' permissions, and its name in a refusal.
    operations: dict[str, str] = {}
    kind = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        model = cls.__dict__.get("model")
        if model is None:
            return
        if not hasattr(model, "__scope__"):
            raise TypeError(f"{model.__name__} declares no __scope__: it cannot get {cls.kind}")
        cls.declare(model)

    @classmethod
    def declare(cls, model) -> None:
        """Everything derived from the model, step by step (each kind adds its own steps)."""
        cls.datamodel = ScopedInterface(model)
        cls.class_permission_name = model.__tablename__
        cls.method_permission_name = {**cls.operations, **cls.permission_of}
        cls.label_columns = {**labels_of(model), **(cls.__dict__.get("label_columns") or {})}

    def _init_properties(self):
        super()._init_properties()
        self.datamodel.show_columns_of(self.list_columns)

    # --- writes: business rules and scope are checked at the flush; errors are messages ---

    def pre_add(self, item):
        self._flush(item)

    def pre_update(self, item):
        self._flush(item)

    def _flush(self, item):
        # Business rules and scope run at the flush; FAB's add/edit commits next.
        with committed(self.datamodel.session, commit=False) as session:
            session.add(item)


def list_args(view) -> tuple[str, str, int | None, int]:
    """A list page's order, page and page size from its URL (`_oc_/_od_/page_/psize_<View>`),
    made safe: FAB's parsers fail with a 500 on a non-number, take any page size (100,000 rows
    made a 15.8 MB page), and hand an unknown order column ("name;drop") to SQL. An order
    column the view does not offer falls back to its default order; the page size is clamped to
    what the API allows (FAB_API_MAX_PAGE_SIZE); a page past any database's integers is empty."""
    name = view.__class__.__name__
    order_column = request.args.get(f"_oc_{name}", "")
    order_direction = request.args.get(f"_od_{name}", "")
    if order_column not in (view.order_columns or ()) or order_direction not in ("asc", "desc"):
        order_column, order_direction = "", ""
    page = request.args.get(f"page_{name}", type=int)
    page = None if page is None else max(page, 0)
    page_size = clamp_page_size(request.args.get(f"psize_{name}", type=int) or view.page_size)
    if page is not None and page * page_size not in ID_RANGE:
        page = ID_RANGE.stop // page_size - 1
    return order_column, order_direction, page, page_size


def check_page_args() -> None:
    """FAB's edit and show pages read every `page_*`/`psize_*` argument with int() (for the
    related lists they may show): one that is not a number is a bad request, not a 500."""
    for key, value in request.args.items():
        if key.startswith(("page_", "psize_")) and not re.fullmatch(r"-?\d{1,18}", value):
            abort(400)


def clamp_page_size(size: int) -> int:
    return min(max(size, 1), current_app.config.get("FAB_API_MAX_PAGE_SIZE") or 100)


def directory_view_of(session, item, columns):
    """The columns of `columns` that `item` shows to the acting user: all of them on a row it
    owns, the model's directory columns on a row it reads only through the directory."""
    allowed = getattr(type(item), "__directory_columns__", None)
    if allowed is None or may_write(session, item):
        return columns
    return [c for c in columns if c in allowed]


# The pages by resource, as app/resources.py registered them in this app.
VIEWS_KEY = "gongjian.views"


def view_of(resource: str):
    """The page of `resource` registered in this app (its columns, labels and formatters make an
    export, whichever way it is asked for), or None."""
    return current_app.extensions.get(VIEWS_KEY, {}).get(resource)
