"""The login user, linked to its place in the domain: an organisation node (for street and
community admins), a unit (for liaisons) and/or a member (for members)."""
from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User as FabUser
from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, String, false, text
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
    # Sessions and tokens carry the version they were issued under (app/security/sessions.py);
    # a password change, a reset, a deactivation or an administrator's lock bumps it, which
    # ends every one of them on every host.
    credential_version = Column(Integer, nullable=False, default=1, server_default=text("1"),
                                info=caption("凭据版本"))

    org = relationship("Organization", foreign_keys=[org_id])
    unit = relationship("Unit", foreign_keys=[unit_id])
    member = relationship("Member", foreign_keys=[member_id])


class UserSession(Model):
    """A logged-in browser session, named in its (signed) cookie by a random id whose hash is
    the key here: logout deletes the row, and a cookie whose row is gone — or whose version is
    not the user's — is no longer a session (app/security/sessions.py)."""

    __tablename__ = "user_session"

    id = Column(String(64), primary_key=True)  # sha256 of the cookie's session id
    user_id = Column(Integer, ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=False,
                     index=True)
    credential_version = Column(Integer, nullable=False)
    created_on = Column(DateTime, nullable=False)
    seen_on = Column(DateTime, nullable=False, index=True)


class RefreshToken(Model):
    """A refresh token that may still be used once: a refresh deletes its row and issues a
    new token with a new row (rotation); a token without a row is refused."""

    __tablename__ = "refresh_token"

    jti = Column(String(64), primary_key=True)
    user_id = Column(Integer, ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=False,
                     index=True)
    expires_on = Column(DateTime, nullable=False, index=True)
