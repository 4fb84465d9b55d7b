"""Accounts: users of every role, their recovery codes and single-use action tokens."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ptmatch.db import Base, UTCDateTime
from ptmatch.models._types import enum_column


class Role(enum.StrEnum):
    PATIENT = "patient"
    THERAPIST = "therapist"
    SECRETARY = "secretary"
    ADMIN = "admin"


STAFF_ROLES = frozenset({Role.THERAPIST, Role.SECRETARY, Role.ADMIN})


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    # UTS #39 skeleton of the address: a look-alike of an existing one is refused (issue 16).
    email_skeleton: Mapped[str] = mapped_column(
        String(1000), index=True, default="", server_default=""
    )
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(enum_column(Role))
    display_name: Mapped[str] = mapped_column(String(120), default="")
    locale: Mapped[str] = mapped_column(String(5), default="de")
    is_enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    email_verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Bumped on logout, password change, 2FA reset and deactivation: every older session dies.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    # TOTP: secret set at enrolment start, confirmed after the first valid code.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    # Lockout, kept in the database so it holds across worker processes.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    first_failed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Second factor: codes evaluated in the current pending login (at most 5), and its
    # generation; bumping the generation drops every pending login (the password is asked again).
    # (Server defaults too: the bench writes users with COPY.)
    totp_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    login_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    recovery_codes: Mapped[list[RecoveryCode]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def has_totp(self) -> bool:
        return self.totp_confirmed_at is not None


class RecoveryCode(Base):
    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="recovery_codes")


class TokenPurpose(enum.StrEnum):
    VERIFY_EMAIL = "verify_email"
    SET_PASSWORD = "set_password"
    CHECKIN = "checkin"


class UserToken(Base):
    """A single-use link token (stored as a SHA-256 hash) for mails: verify, set password,
    check-in."""

    __tablename__ = "user_tokens"
    __table_args__ = (Index("ix_user_tokens_user_purpose", "user_id", "purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[TokenPurpose] = mapped_column(enum_column(TokenPurpose))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
