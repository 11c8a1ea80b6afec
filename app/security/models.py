"""The login user, linked to its place in the domain: an organisation node (for street and
community admins), a unit (for liaisons) and/or a member (for members)."""
from flask_appbuilder.security.sqla.models import User as FabUser
from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, false
from sqlalchemy.orm import relationship

# The links point at business tables that themselves point back at ab_user (created_by):
# use_alter adds them after both tables exist, on every database.

from app.models.base import caption


class UserAccount(FabUser):
    __tablename__ = "ab_user"

    org_id = Column(Integer, ForeignKey("organization.id", use_alter=True), nullable=True,
                    info=caption("所属组织"))
    unit_id = Column(Integer, ForeignKey("unit.id", use_alter=True), nullable=True,
                     info=caption("所属单位"))
    member_id = Column(Integer, ForeignKey("member.id", use_alter=True), nullable=True,
                       info=caption("对应党员"))
    # Account security (app/security/login_guard.py): a password an administrator set must be
    # replaced at the next login (production); consecutive failures lock the account a while.
    must_change_password = Column(Boolean, nullable=False, default=False, server_default=false(),
                                  info=caption("须修改密码"))
    locked_until = Column(DateTime, nullable=True, info=caption("锁定至"))

    org = relationship("Organization", foreign_keys=[org_id])
    unit = relationship("Unit", foreign_keys=[unit_id])
    member = relationship("Member", foreign_keys=[member_id])
