"""Patients: identity and preferences, clinical intake (separate table), availability, notes."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ptmatch.db import Base, UTCDateTime
from ptmatch.models._types import enum_column
from ptmatch.models.users import User


class PatientStatus(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    BOOKED = "booked"
    INACTIVE = "inactive"
    DELETED = "deleted"


class Preference(enum.StrEnum):
    WANTED = "wanted"
    ACCEPTABLE = "acceptable"
    NO = "no"


class CareStage(enum.StrEnum):
    """What the patient is looking for now (issue 13): a slot's kind must fit it."""

    SPRECHSTUNDE = "sprechstunde"  # a first appointment
    THERAPY = "therapy"  # a therapy place after a Sprechstunde (they hold a PTV 11 form)
    GROUP = "group"  # a group programme only
    ANY = "any"  # any of these


class RegisteredVia(enum.StrEnum):
    SELF = "self"
    PRACTICE_LINK = "practice_link"
    SECRETARIAT = "secretariat"


AVAIL_COLUMNS = tuple(f"avail_{day}" for day in range(7))  # Monday .. Sunday
# What the covering index carries besides its leading columns (ptmatch.domain.filters).
MATCH_INDEX_TAIL = (
    "paused_until",
    "insurance",
    "care_stage",
    "ptv11_date",
    "video_pref",
    "video_only",
    "needs_accessible_room",
    "therapist_gender_wish",
    "gender_only",
    "languages_mask",
    "languages_only",
    "methods_mask",
    "methods_only",
    "birth_date",
    *AVAIL_COLUMNS,
    "id",
)


class Patient(Base):
    __tablename__ = "patients"
    __table_args__ = (
        Index("ix_patients_status_lat_lon", "status", "lat", "lon"),
        # The pool prefilter, per reach band: max_distance_km IN (band values) AND a lat/lon box of
        # the band's radius -- one index seek per value, no scan of the whole pool (see
        # BENCHMARKS.md).
        Index("ix_patients_status_reach_lat_lon", "status", "max_distance_km", "lat", "lon"),
        Index("ix_patients_last_name", "last_name"),
        # Issue 17: the matching prefilter on one table. The equality columns and the reach box
        # lead; every other hard filter that lives on the row follows, so the whole test is
        # decided inside the index (SQLite reads the table row only for the survivors;
        # PostgreSQL answers the candidate ids with an index-only scan).
        Index(
            "ix_patients_match",
            "in_pool",
            "matchable",
            "max_distance_km",
            "lat",
            "lon",
            *MATCH_INDEX_TAIL,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), unique=True
    )
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(32), default="")  # E.164
    # Offers, reminders and check-ins also by SMS (only with a mobile number; SMS_SENDER on)
    sms_opt_in: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    gender: Mapped[str] = mapped_column(String(1), default="x")
    postcode: Mapped[str] = mapped_column(String(10), default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    max_distance_km: Mapped[int] = mapped_column(Integer, default=20)
    languages_mask: Mapped[int] = mapped_column(BigInteger, default=1)
    therapist_gender_wish: Mapped[str] = mapped_column(String(3), default="any")
    methods_mask: Mapped[int] = mapped_column(BigInteger, default=0)
    insurance: Mapped[str] = mapped_column(String(10), default="gkv")
    video_pref: Mapped[Preference] = mapped_column(
        enum_column(Preference), default=Preference.ACCEPTABLE
    )
    group_pref: Mapped[Preference] = mapped_column(enum_column(Preference), default=Preference.NO)
    # In person only in an accessible room (a hard filter of matching and self-enrolment).
    needs_accessible_room: Mapped[bool] = mapped_column(default=False)
    # Where the patient is in care (a hard filter against a slot's kind, ptmatch.domain.filters).
    care_stage: Mapped[CareStage] = mapped_column(
        enum_column(CareStage), default=CareStage.ANY, server_default=CareStage.ANY.value
    )
    # The date of the PTV 11 form from a Sprechstunde (None: no form yet). Not clinical: the
    # form's urgency and recommended care are (PatientClinical). Used by statistics (issue 14).
    ptv11_date: Mapped[dt.date | None] = mapped_column(Date)
    # Hard wishes: when set, the wish is a hard filter; otherwise it only adds points.
    # (Server defaults too: bulk loaders such as the bench generator write rows without them.)
    methods_only: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    gender_only: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    languages_only: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    video_only: Mapped[bool] = mapped_column(
        default=False, server_default=text("false")
    )  # video "wanted"
    status: Mapped[PatientStatus] = mapped_column(
        enum_column(PatientStatus), default=PatientStatus.ACTIVE
    )
    paused_until: Mapped[dt.date | None] = mapped_column(Date)
    status_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    registered_via: Mapped[RegisteredVia] = mapped_column(
        enum_column(RegisteredVia), default=RegisteredVia.SELF
    )
    registered_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    consent_health_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    consent_rules_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Set when the secretariat recorded a caller's verbal consent.
    consent_recorded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # "Still looking?" check-ins.
    last_confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    checkin_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    # --- Issue 17: hard filters denormalised onto the row (ptmatch.domain.match_columns keeps
    # them; never set them by hand). Server defaults: bulk loaders compute them themselves.
    # Active, both consents, and a verified enabled account or a recorded phone consent (the
    # pause is dated, so `paused_until` stays the test for it).
    matchable: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    # An active entry in the regional pool.
    in_pool: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    # Weekly availability per weekday (avail_0 = Monday): bit h is set when the half-hour
    # [30h, 30h + 30) minutes after midnight, Berlin wall clock, lies within the windows.
    avail_0: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    avail_1: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    avail_2: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    avail_3: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    avail_4: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    avail_5: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    avail_6: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    user: Mapped[User | None] = relationship(foreign_keys=[user_id])
    clinical: Mapped[PatientClinical | None] = relationship(
        back_populates="patient", cascade="all, delete-orphan", passive_deletes=True, uselist=False
    )
    availability: Mapped[list[Availability]] = relationship(
        back_populates="patient",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="(Availability.weekday, Availability.start_min)",
    )

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def initials(self) -> str:
        return "".join(part[:1].upper() + "." for part in (self.first_name, self.last_name) if part)

    def age_on(self, day: dt.date) -> int | None:
        if self.birth_date is None:
            return None
        b = self.birth_date
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))


class PatientClinical(Base):
    """Clinical intake. Loaded only through ptmatch.domain.access (clinicians only)."""

    __tablename__ = "patient_clinical"

    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )
    problems_mask: Mapped[int] = mapped_column(BigInteger, default=0)
    description: Mapped[str] = mapped_column(Text, default="")
    urgent: Mapped[bool] = mapped_column(default=False)  # PTV 11 "zeitnah erforderlich"
    urgency_code: Mapped[str] = mapped_column(String(20), default="")
    # PTV 11: the recommended form of care ("" unknown; see patients.PTV11_CARE).
    ptv11_care: Mapped[str] = mapped_column(String(20), default="", server_default="")
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    patient: Mapped[Patient] = relationship(back_populates="clinical")


class Availability(Base):
    """A weekly window in Berlin local time: weekday 0 = Monday, minutes after midnight."""

    __tablename__ = "availability"
    __table_args__ = (
        Index("ix_availability_lookup", "weekday", "start_min", "end_min", "patient_id"),
        # The matcher's "available for the whole session" probe per candidate, index only.
        Index("ix_availability_patient_window", "patient_id", "weekday", "start_min", "end_min"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(Integer)
    start_min: Mapped[int] = mapped_column(Integer)
    end_min: Mapped[int] = mapped_column(Integer)

    patient: Mapped[Patient] = relationship(back_populates="availability")


class ClinicalNote(Base):
    """A therapist's note on a patient: clinical, so only clinicians of the practice read it."""

    __tablename__ = "clinical_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class CallNote(Base):
    """A secretariat's non-clinical note on a call (e.g. "call back after 4 pm")."""

    __tablename__ = "call_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
