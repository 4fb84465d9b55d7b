"""Slots: a free appointment a therapist posts; offered in waves until someone accepts."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ptmatch.db import Base, UTCDateTime
from ptmatch.models._types import enum_column


class SlotKind(enum.StrEnum):
    SPRECHSTUNDE = "sprechstunde"
    PROBATORIK = "probatorik"
    AKUT = "akut"
    THERAPY_PLACE = "therapy_place"  # a weekly time from a start date


class Modality(enum.StrEnum):
    IN_PERSON = "in_person"
    VIDEO = "video"


class SlotStatus(enum.StrEnum):
    OFFERING = "offering"
    BOOKED = "booked"
    UNFILLED = "unfilled"
    CANCELLED = "cancelled"


class OfferMode(enum.StrEnum):
    AUTO = "auto"
    MANUAL = "manual"


class Slot(Base):
    __tablename__ = "slots"
    __table_args__ = (
        Index("ix_slots_status_deadline", "status", "offer_deadline_at"),
        Index("ix_slots_therapist_start", "therapist_id", "start_at"),
        Index("ix_slots_practice_start", "practice_id", "start_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id", ondelete="CASCADE"))
    start_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    minutes: Mapped[int] = mapped_column(Integer, default=50)
    kind: Mapped[SlotKind] = mapped_column(enum_column(SlotKind), default=SlotKind.SPRECHSTUNDE)
    modality: Mapped[Modality] = mapped_column(enum_column(Modality), default=Modality.IN_PERSON)
    status: Mapped[SlotStatus] = mapped_column(enum_column(SlotStatus), default=SlotStatus.OFFERING)
    offer_mode: Mapped[OfferMode] = mapped_column(enum_column(OfferMode), default=OfferMode.AUTO)
    wave_size: Mapped[int] = mapped_column(Integer, default=3)
    offer_ttl_minutes: Mapped[int] = mapped_column(Integer, default=720)
    # No offer may be answered after this (start minus the practice's cut-off).
    offer_deadline_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    current_wave: Mapped[int] = mapped_column(Integer, default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # A slot a patient cancelled is re-posted as a new slot pointing back here.
    reposted_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("slots.id", ondelete="SET NULL")
    )
    outcome_notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # In person only: the practice room it occupies (buffers included, see domain/rooms.py).
    room_id: Mapped[int | None] = mapped_column(
        ForeignKey("rooms.id", ondelete="SET NULL"), index=True
    )

    practice = relationship("Practice")
    therapist = relationship("Therapist")
    room = relationship("Room")

    @property
    def end_at(self) -> dt.datetime:
        return self.start_at + dt.timedelta(minutes=self.minutes)
