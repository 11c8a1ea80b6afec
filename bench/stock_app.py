"""The baseline of the list pages: stock Flask-AppBuilder over the same tables and data.

What a user would otherwise get: plain `ModelView`s with the panel's list and order columns and
FAB's defaults for everything else — full counts, no data scope — in two configurations:

- **tuned** (`BENCH_STOCK_TUNED=1`, the baseline the targets are judged against): what a
  competent user sets on day one — search columns that are the table's own columns (FAB renders
  a relationship's search field as a `<select>` holding every related row: all 600,000 members
  on the service-record page of the city) and the panel's page size (20);
- **untuned**: the panel's search columns, relationships included, and FAB's page size (25) —
  the baseline of the earlier runs, kept for comparison.

The models below map the same
tables (only the columns the lists show); they live on their own metadata bound to the bench
database (`SQLALCHEMY_BINDS["data"]`), while FAB's own ab_* tables go to a small security
database of the stock app, so the bench database is never written. It logs in like any FAB
app: an `admin` user with the bench password, created by `python -m bench.stock_app init`.

Served by gunicorn as `bench.stock_app:app`; the data URL is `BENCH_STOCK_DATA_URL`.
"""
from __future__ import annotations

import os
import sys
from datetime import datetime

from flask import Flask
from flask_appbuilder import AppBuilder, ModelView
from flask_appbuilder.models.sqla.base import SQLA
from flask_appbuilder.models.sqla.interface import SQLAInterface
from sqlalchemy import Column, Date, DateTime, ForeignKey, Integer, MetaData, Numeric, String, Text
from sqlalchemy.orm import declarative_base, relationship

from bench.cache import BENCH_DATA, PASSWORD, SECRET_KEY

Data = declarative_base(metadata=MetaData(info={"bind_key": "data"}))


class Organization(Data):
    __tablename__ = "organization"
    id = Column(Integer, primary_key=True)
    name = Column(String(100))

    def __str__(self):
        return self.name or ""


class Dictionary(Data):
    __tablename__ = "dictionary"
    id = Column(Integer, primary_key=True)
    label = Column(String(100))

    def __str__(self):
        return self.label or ""


class Unit(Data):
    __tablename__ = "unit"
    id = Column(Integer, primary_key=True)
    name = Column(String(100))

    def __str__(self):
        return self.name or ""


class Member(Data):
    __tablename__ = "member"
    id = Column(Integer, primary_key=True)
    name = Column(String(50))
    gender = Column(String(2))
    phone = Column(String(30))
    community_id = Column(Integer, ForeignKey("organization.id"))
    work_unit_id = Column(Integer, ForeignKey("unit.id"))
    category = Column(String(8))
    status = Column(String(8))
    community = relationship(Organization)
    work_unit = relationship(Unit)

    def __str__(self):
        return self.name or ""


class Need(Data):
    __tablename__ = "need"
    id = Column(Integer, primary_key=True)
    title = Column(String(100))
    community_id = Column(Integer, ForeignKey("organization.id"))
    category_id = Column(Integer, ForeignKey("dictionary.id"))
    urgency = Column(String(4))
    source = Column(String(8))
    status = Column(String(8))
    assigned_unit_id = Column(Integer, ForeignKey("unit.id"))
    deadline = Column(DateTime)
    created_on = Column(DateTime)
    community = relationship(Organization)
    category = relationship(Dictionary)
    assigned_unit = relationship(Unit)

    @property
    def overdue(self):
        return bool(self.deadline and self.deadline < datetime.now()
                    and self.status not in ("已驳回", "已办结", "已回访"))

    def __str__(self):
        return self.title or ""


class ServicePost(Data):
    __tablename__ = "service_post"
    id = Column(Integer, primary_key=True)
    name = Column(String(100))

    def __str__(self):
        return self.name or ""


class ServiceItem(Data):
    __tablename__ = "service_item"
    id = Column(Integer, primary_key=True)
    title = Column(String(100))

    def __str__(self):
        return self.title or ""


class MicroWish(Data):
    __tablename__ = "micro_wish"
    id = Column(Integer, primary_key=True)
    content = Column(Text)

    def __str__(self):
        return (self.content or "")[:20]


class ServiceRecord(Data):
    __tablename__ = "service_record"
    id = Column(Integer, primary_key=True)
    member_id = Column(Integer, ForeignKey("member.id"))
    served_on = Column(Date)
    hours = Column(Numeric(5, 1))
    status = Column(String(8))
    certified_on = Column(DateTime)
    post_id = Column(Integer, ForeignKey("service_post.id"))
    service_item_id = Column(Integer, ForeignKey("service_item.id"))
    need_id = Column(Integer, ForeignKey("need.id"))
    micro_wish_id = Column(Integer, ForeignKey("micro_wish.id"))
    member = relationship(Member)
    post = relationship(ServicePost)
    service_item = relationship(ServiceItem)
    need = relationship(Need)
    micro_wish = relationship(MicroWish)

    @property
    def served_what(self):
        for label, target in (("岗位", self.post), ("项目", self.service_item),
                              ("需求", self.need), ("微心愿", self.micro_wish)):
            if target is not None:
                return f"{label}：{target}"
        return "其他服务"


# The panel's list, search and order columns (app/views/org.py, lists.py, cobuild.py); class
# names and routes as the panel's, so the same URL arguments address the same page.
class NeedView(ModelView):
    route_base = "/need"
    datamodel = SQLAInterface(Need)
    list_columns = ["title", "community", "category", "urgency", "status", "assigned_unit",
                    "deadline", "overdue"]
    search_columns = ["title", "community", "category", "urgency", "status", "assigned_unit",
                      "source", "created_on"]
    order_columns = ["title", "urgency", "status", "deadline", "created_on"]
    base_order = ("created_on", "desc")


class MemberView(ModelView):
    route_base = "/member"
    datamodel = SQLAInterface(Member)
    list_columns = ["name", "gender", "phone", "community", "work_unit", "category", "status"]
    search_columns = ["name", "community", "work_unit", "category", "status", "gender"]
    order_columns = ["name", "category", "status"]
    base_order = ("name", "asc")


class ServiceRecordView(ModelView):
    route_base = "/service_record"
    datamodel = SQLAInterface(ServiceRecord)
    list_columns = ["member", "served_on", "hours", "served_what", "status", "certified_on"]
    search_columns = ["member", "post", "status", "served_on"]
    order_columns = ["served_on", "hours", "status"]
    base_order = ("served_on", "desc")


VIEWS = ((NeedView, "Need"), (MemberView, "Member"), (ServiceRecordView, "ServiceRecord"))
PANEL_PAGE_SIZE = 20  # app.views.entity.EntityView.page_size


def tuned(view: type[ModelView]) -> type[ModelView]:
    """The view as a competent user configures it: no relationship among its search columns,
    the panel's page size. Same class name, so the same URL arguments address the same page."""
    own = [c for c in view.search_columns if not view.datamodel.is_relation(c)]
    return type(view.__name__, (view,), {"search_columns": own, "page_size": PANEL_PAGE_SIZE})


def create_app(data_url: str, tuned_views: bool = False) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{BENCH_DATA / 'stock-security.db'}",
        SQLALCHEMY_BINDS={"data": data_url},
        AUTH_TYPE=1,  # database logins, as FAB's skeleton app
    )
    db = SQLA()
    db.init_app(app)
    with app.app_context():
        appbuilder = AppBuilder(app, db.session)
        for view, name in VIEWS:
            appbuilder.add_view(tuned(view) if tuned_views else view, name)
    return app


def init(data_url: str) -> None:
    """FAB's tables in the security database, and the admin who logs in (once)."""
    app = create_app(data_url)
    with app.app_context():
        sm = app.appbuilder.sm
        user = sm.find_user(username="admin")
        if user is None:
            sm.add_user("admin", "Stock", "Admin", "admin@stock.invalid",
                        sm.find_role(sm.auth_role_admin), PASSWORD)
        else:
            sm.reset_password(user.id, PASSWORD)


if __name__ == "__main__" and sys.argv[1:2] == ["init"]:
    init(sys.argv[2])
elif os.environ.get("BENCH_STOCK_DATA_URL"):
    app = create_app(os.environ["BENCH_STOCK_DATA_URL"], os.environ.get("BENCH_STOCK_TUNED") == "1")
