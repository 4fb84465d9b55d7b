"""Call tasks: the secretariat's queue of people to phone (callers without an email address)."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ptmatch.db import Base, UTCDateTime
from ptmatch.models._types import enum_column


class CallKind(enum.StrEnum):
    OFFER = "offer"  # tell them about an offer and take their answer
    REMINDER = "reminder"  # remind them of a booked appointment
    CHECKIN = "checkin"  # ask whether they are still looking


class CallStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"


class CallOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"
    NOT_REACHED = "not_reached"
    REACHED = "reached"  # a reminder or check-in delivered
    STILL_LOOKING = "still_looking"  # a check-in answered "yes"


class CallTask(Base):
    __tablename__ = "call_tasks"
    __table_args__ = (
        Index("ix_call_tasks_status_due", "status", "due_at"),
        Index("ix_call_tasks_patient", "patient_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[CallKind] = mapped_column(enum_column(CallKind))
    status: Mapped[CallStatus] = mapped_column(enum_column(CallStatus), default=CallStatus.OPEN)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    offer_id: Mapped[int | None] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"))
    slot_id: Mapped[int | None] = mapped_column(ForeignKey("slots.id", ondelete="CASCADE"))
    # A group seat offer's group (a slot offer has slot_id instead).
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("group_programs.id", ondelete="CASCADE")
    )
    practice_id: Mapped[int | None] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # call before this
    # One task per reason: "offer:<offer id>:<wave>", "reminder:<booking id>", "checkin:..."
    dedupe_key: Mapped[str] = mapped_column(String(80), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[CallOutcome | None] = mapped_column(enum_column(CallOutcome))
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    patient = relationship("Patient")
    offer = relationship("Offer")
    slot = relationship("Slot")
    group = relationship("GroupProgram")
    practice = relationship("Practice")
