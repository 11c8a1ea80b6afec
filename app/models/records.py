"""Records that must not be lost (DOMAIN.md §6): the audit trail."""
import json

from flask_appbuilder import Model
from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer, String, Text, event

from app import clock
from app.errors import DomainError
from app.i18n import N_
from app.models.base import GLOBAL, caption

AUDIT_ACTIONS = {
    "create": N_("新增"),
    "update": N_("修改"),
    "delete": N_("删除"),
    "restore": N_("恢复"),
    "transition": N_("流转"),
    "export": N_("导出"),
    "import": N_("导入"),
    "login": N_("登录"),
    "login_failed": N_("登录失败"),
    "logout": N_("退出"),
    # A user shown personal data in full (身份证号, phone), and a row erased for good after its
    # time in the recycle bin.
    "reveal": N_("查看敏感信息"),
    "purge": N_("彻底删除"),
}


class AuditLog(Model):
    """Append-only: written by the session hooks in `app.services.audit`, never edited."""

    __tablename__ = "audit_log"
    __label__ = N_("操作日志")
    # Read by Admin and Auditor only (permissions), across all scope.
    __scope__ = GLOBAL
    __table_args__ = (
        Index("ix_audit_log_resource_record", "resource", "record_id"),
        Index("ix_audit_log_user_time", "user_id", "time"),
    )

    id = Column(Integer, primary_key=True)
    time = Column(DateTime, nullable=False, default=clock.utcnow, index=True, info=caption("时间"))
    user_id = Column(Integer, ForeignKey("ab_user.id"), nullable=True, info=caption("用户"))
    username = Column(String(100), index=True, info=caption("用户名"))
    action = Column(String(16), nullable=False, index=True,
                    info=caption("操作", choices=AUDIT_ACTIONS))
    resource = Column(String(50), index=True, info=caption("对象类型"))
    record_id = Column(String(50), index=True, info=caption("记录编号"))
    # JSON: {"field": [before, after]} for writes; {"filters": …, "rows": n} for exports.
    changes = Column(Text, info=caption("变更内容"))
    ip = Column(String(64), index=True, info=caption("IP地址"))

    __extra_labels__ = {"summary": N_("变更摘要"), "content": N_("变更内容")}

    @property
    def details(self) -> dict:
        try:
            value = json.loads(self.changes) if self.changes else {}
        except ValueError:
            return {"": self.changes}
        return value if isinstance(value, dict) else {"": value}

    # The record's changes in words need the whole record (its resource names the fields and
    # their values): these columns hand the views the record itself, which they word — the
    # list briefly, the record's export in full (app/views/records.py).
    @property
    def summary(self) -> "AuditLog":
        return self

    @property
    def content(self) -> "AuditLog":
        return self


@event.listens_for(AuditLog, "before_update")
@event.listens_for(AuditLog, "before_delete")
def _append_only(mapper, connection, entry) -> None:
    """Nobody changes the trail — no role, no view, no API: a record once written stays."""
    raise DomainError("操作日志只能追加，不能修改或删除")
