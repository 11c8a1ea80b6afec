"""Records that must not be lost (DOMAIN.md §6): the audit trail."""
from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer, String, Text

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
    time = Column(DateTime, nullable=False, default=datetime.now, index=True, info=caption("时间"))
    user_id = Column(Integer, ForeignKey("ab_user.id"), nullable=True, info=caption("用户"))
    username = Column(String(100), info=caption("用户名"))
    action = Column(String(16), nullable=False, index=True, info=caption("操作", choices=AUDIT_ACTIONS))
    resource = Column(String(50), index=True, info=caption("对象类型"))
    record_id = Column(String(50), info=caption("记录编号"))
    # JSON: {"field": [before, after]} for writes; {"filters": …, "rows": n} for exports.
    changes = Column(Text, info=caption("变更内容"))
    ip = Column(String(64), info=caption("IP地址"))
