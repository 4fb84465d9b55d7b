"""Practices, their rooms and therapists, calendar blocks, and which practices a secretariat
serves."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ptmatch.db import Base, UTCDateTime
from ptmatch.models._types import enum_column
from ptmatch.models.slots import Modality
from ptmatch.models.users import User


class Practice(Base):
    __tablename__ = "practices"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    street: Mapped[str] = mapped_column(String(200), default="")
    postcode: Mapped[str] = mapped_column(String(10), default="")
    city: Mapped[str] = mapped_column(String(120), default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    phone: Mapped[str] = mapped_column(String(40), default="")
    website: Mapped[str] = mapped_column(String(300), default="")
    booking_info: Mapped[str] = mapped_column(Text, default="")
    cancellation_policy: Mapped[str] = mapped_column(Text, default="")
    # e.g. "https://video.example/room/{slot_id}"; {slot_id} and {token} are filled in.
    video_link_template: Mapped[str] = mapped_column(String(300), default="")
    accepts_pool: Mapped[bool] = mapped_column(default=True)
    cancel_notice_hours: Mapped[int] = mapped_column(Integer, default=24)
    offer_cutoff_minutes: Mapped[int] = mapped_column(Integer, default=120)
    # Optional per-practice wave rules: [[max_lead_hours|null, wave_size, ttl_minutes], ...]
    wave_rules: Mapped[list | None] = mapped_column(JSON)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    therapists: Mapped[list[Therapist]] = relationship(back_populates="practice")


class Room(Base):
    """A room of the practice: an in-person slot or group session needs a free one."""

    __tablename__ = "rooms"
    __table_args__ = (UniqueConstraint("practice_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(
        ForeignKey("practices.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(80))
    capacity: Mapped[int] = mapped_column(Integer, default=2)  # people in person, therapist too
    accessible: Mapped[bool] = mapped_column(default=False)  # step-free, wheelchair accessible
    note: Mapped[str] = mapped_column(String(300), default="")
    is_active: Mapped[bool] = mapped_column(default=True)


class Therapist(Base):
    __tablename__ = "therapists"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    practice_id: Mapped[int | None] = mapped_column(ForeignKey("practices.id"), index=True)
    title: Mapped[str] = mapped_column(String(60), default="")
    gender: Mapped[str] = mapped_column(String(1), default="x")
    approbation: Mapped[str] = mapped_column(String(200), default="")
    lanr: Mapped[str] = mapped_column(String(9), default="")
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Catalogue bit masks (see ptmatch.catalog).
    methods_mask: Mapped[int] = mapped_column(BigInteger, default=0)
    specialties_mask: Mapped[int] = mapped_column(BigInteger, default=0)
    exclusions_mask: Mapped[int] = mapped_column(BigInteger, default=0)
    populations_mask: Mapped[int] = mapped_column(BigInteger, default=0)
    languages_mask: Mapped[int] = mapped_column(BigInteger, default=0)
    insurances_mask: Mapped[int] = mapped_column(BigInteger, default=0)
    offers_in_person: Mapped[bool] = mapped_column(default=True)
    offers_video: Mapped[bool] = mapped_column(default=False)
    offers_group: Mapped[bool] = mapped_column(default=False)
    session_minutes: Mapped[int] = mapped_column(Integer, default=50)
    buffer_minutes: Mapped[int] = mapped_column(Integer, default=10)
    switch_buffer_minutes: Mapped[int] = mapped_column(Integer, default=15)
    # The room an in-person slot or group takes first (when free); None = the first free one.
    default_room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id", ondelete="SET NULL"))
    # Private iCalendar feed: SHA-256 of the secret in the URL; NULL = feed off.
    calendar_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    practice: Mapped[Practice | None] = relationship(back_populates="therapists")

    @property
    def is_approved(self) -> bool:
        return self.approved_at is not None


class CalendarBlock(Base):
    """A weekly block the therapist reserves for one modality (Berlin local time)."""

    __tablename__ = "calendar_blocks"

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(
        ForeignKey("therapists.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(Integer)  # 0 = Monday
    start_min: Mapped[int] = mapped_column(Integer)  # minutes after local midnight
    end_min: Mapped[int] = mapped_column(Integer)
    modality: Mapped[Modality] = mapped_column(enum_column(Modality))
    # An in-person block may name its room: posting inside the block takes it first.
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id", ondelete="SET NULL"))


class SecretariatAssignment(Base):
    """A secretariat user serves (answers the phone for) a practice."""

    __tablename__ = "secretariat_assignments"
    __table_args__ = (UniqueConstraint("user_id", "practice_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    practice_id: Mapped[int] = mapped_column(
        ForeignKey("practices.id", ondelete="CASCADE"), index=True
    )
