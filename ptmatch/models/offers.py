"""Offers: one slot (or group seat) offered to one patient, answered through a hashed token."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ptmatch.db import Base, UTCDateTime
from ptmatch.models._types import enum_column


class OfferStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    TAKEN = "taken"  # someone else accepted first
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"  # slot cancelled, or the patient was booked elsewhere


class Offer(Base):
    __tablename__ = "offers"
    __table_args__ = (
        UniqueConstraint("slot_id", "patient_id"),
        UniqueConstraint("group_id", "patient_id"),
        Index("ix_offers_status_expires", "status", "expires_at"),
        Index("ix_offers_patient_status", "patient_id", "status"),
        Index("ix_offers_slot_status", "slot_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slot_id: Mapped[int | None] = mapped_column(ForeignKey("slots.id", ondelete="CASCADE"))
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("group_programs.id", ondelete="CASCADE")
    )
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    wave: Mapped[int] = mapped_column(Integer, default=1)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[OfferStatus] = mapped_column(
        enum_column(OfferStatus), default=OfferStatus.PENDING
    )
    score: Mapped[int] = mapped_column(Integer, default=0)
    # Why this patient was offered it: [[msgid, params, points, clinical], ...] from matching.
    reasons: Mapped[list | None] = mapped_column(JSON)
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    responded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Who answered: the patient's own user, or a secretariat user acting for a caller.
    responded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    slot = relationship("Slot")
    group = relationship("GroupProgram")
    patient = relationship("Patient")

    def effective_status(self, now: dt.datetime) -> OfferStatus:
        """Expiry derived on read: a pending offer past its deadline is expired, swept or not."""
        return status_at(self.status, self.expires_at, now)


def status_at(status: OfferStatus, expires_at: dt.datetime, now: dt.datetime) -> OfferStatus:
    """An offer's status at `now` (`Offer.effective_status` for a row read without the ORM)."""
    if status == OfferStatus.PENDING and now >= expires_at:
        return OfferStatus.EXPIRED
    return status
