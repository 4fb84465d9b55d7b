"""Waitlist entries: patient x practice, or patient in the regional pool (practice_id NULL).

Entries are never deleted while the patient exists: removal keeps the row with a reason,
so a released booking can restore the lists the patient was on.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Index, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ptmatch.db import Base, UTCDateTime
from ptmatch.models._types import enum_column
from ptmatch.models.patients import Patient
from ptmatch.models.practices import Practice


class EntryStatus(enum.StrEnum):
    ACTIVE = "active"
    REMOVED = "removed"


class RemovalReason(enum.StrEnum):
    BOOKED_ELSEWHERE = "booked_elsewhere"
    LEFT = "left"  # the patient left the list
    REMOVED_BY_PRACTICE = "removed_by_practice"
    REFERRED = "referred"
    PURGED = "purged"


class WaitlistEntry(Base):
    __tablename__ = "waitlist_entries"
    __table_args__ = (
        UniqueConstraint("patient_id", "practice_id"),
        # The practice's list in its default order (ORDER BY added_at, id), so a page is read
        # from the index in order and stops after its rows (issue 17).
        Index("ix_waitlist_practice_status_added", "practice_id", "status", "added_at", "id"),
        Index("ix_waitlist_patient_status", "patient_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    practice_id: Mapped[int | None] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    status: Mapped[EntryStatus] = mapped_column(
        enum_column(EntryStatus), default=EntryStatus.ACTIVE
    )
    priority: Mapped[int] = mapped_column(Integer, default=0)
    via_practice_link: Mapped[bool] = mapped_column(default=False)
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    removed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    removed_reason: Mapped[RemovalReason | None] = mapped_column(enum_column(RemovalReason))
    referred_to_id: Mapped[int | None] = mapped_column(
        ForeignKey("practices.id", ondelete="SET NULL")
    )

    patient: Mapped[Patient] = relationship()
    practice: Mapped[Practice | None] = relationship(foreign_keys=[practice_id])

    @property
    def is_pool(self) -> bool:
        return self.practice_id is None


# The list sorted by priority: ORDER BY priority DESC, added_at, id (workbench.list_waitlist).
Index(
    "ix_waitlist_practice_status_priority",
    WaitlistEntry.practice_id,
    WaitlistEntry.status,
    WaitlistEntry.priority.desc(),
    WaitlistEntry.added_at,
    WaitlistEntry.id,
)
