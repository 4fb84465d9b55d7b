"""Bookings: at most one per slot, enforced by a unique constraint."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ptmatch.db import Base, UTCDateTime
from ptmatch.models._types import enum_column


class BookingStatus(enum.StrEnum):
    CONFIRMED = "confirmed"
    ATTENDED = "attended"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    RELEASED = "released"  # released by the practice as "no fit": the patient may reactivate


class Booking(Base):
    __tablename__ = "bookings"

    id: Mapped[int] = mapped_column(primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("slots.id", ondelete="CASCADE"), unique=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    offer_id: Mapped[int | None] = mapped_column(ForeignKey("offers.id", ondelete="SET NULL"))
    status: Mapped[BookingStatus] = mapped_column(
        enum_column(BookingStatus), default=BookingStatus.CONFIRMED
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    booked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    cancelled_by: Mapped[str] = mapped_column(String(12), default="")  # patient | practice
    reminder_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    slot = relationship("Slot")
    patient = relationship("Patient")
