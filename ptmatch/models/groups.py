"""Group programmes and enrolments (seats, then an ordered waitlist)."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ptmatch.db import Base, UTCDateTime
from ptmatch.models._types import enum_column
from ptmatch.models.slots import Modality


class GroupStatus(enum.StrEnum):
    OPEN = "open"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


class EnrollmentStatus(enum.StrEnum):
    ENROLLED = "enrolled"
    WAITLISTED = "waitlisted"
    WITHDRAWN = "withdrawn"
    CANCELLED = "cancelled"  # the group was cancelled


class GroupProgram(Base):
    __tablename__ = "group_programs"

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(
        ForeignKey("practices.id", ondelete="CASCADE"), index=True
    )
    therapist_id: Mapped[int] = mapped_column(
        ForeignKey("therapists.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(20), default="")
    problems_mask: Mapped[int] = mapped_column(BigInteger, default=0)
    modality: Mapped[Modality] = mapped_column(enum_column(Modality), default=Modality.IN_PERSON)
    first_session_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    session_count: Mapped[int] = mapped_column(Integer, default=10)
    minutes: Mapped[int] = mapped_column(Integer, default=100)
    min_participants: Mapped[int] = mapped_column(Integer, default=5)
    max_participants: Mapped[int] = mapped_column(Integer, default=10)
    # Incremented with a conditional UPDATE (... WHERE enrolled_count < max): the seat race.
    enrolled_count: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[GroupStatus] = mapped_column(enum_column(GroupStatus), default=GroupStatus.OPEN)
    wave_size: Mapped[int] = mapped_column(Integer, default=5)
    offer_ttl_minutes: Mapped[int] = mapped_column(Integer, default=1440)
    current_wave: Mapped[int] = mapped_column(Integer, default=0)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # In person only: the practice room of the weekly sessions (its capacity holds the maximum).
    room_id: Mapped[int | None] = mapped_column(
        ForeignKey("rooms.id", ondelete="SET NULL"), index=True
    )
    # Patients who fit may enrol themselves from their dashboard; False = offers only.
    self_enrol: Mapped[bool] = mapped_column(default=True)
    # Why the practice cancelled it by hand (empty: not cancelled, or below the minimum).
    cancel_reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    practice = relationship("Practice")
    therapist = relationship("Therapist")
    room = relationship("Room")


class GroupEnrollment(Base):
    __tablename__ = "group_enrollments"
    __table_args__ = (UniqueConstraint("group_id", "patient_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("group_programs.id", ondelete="CASCADE"), index=True
    )
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[EnrollmentStatus] = mapped_column(enum_column(EnrollmentStatus))
    position: Mapped[int | None] = mapped_column(Integer)  # waitlist order
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    group = relationship("GroupProgram")
    patient = relationship("Patient")
