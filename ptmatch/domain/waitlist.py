"""Waitlists: a patient joins practices' lists or the regional pool, leaves them, and gets
them back after a booking that did not work out.

Entries are never deleted while the patient exists: removal keeps the row with a reason
(``RemovalReason``), and (patient_id, practice_id) is unique, so re-joining re-activates
the old row. The regional pool is the row with ``practice_id IS NULL``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, selectinload

from ptmatch.catalog import (
    INSURANCES,
    LANGUAGES,
    METHODS,
    N_,
    POPULATIONS,
    PROBLEM_AREAS,
    population_for_age,
)
from ptmatch.domain import audit, geo
from ptmatch.domain.errors import InvalidInput, NotAllowed
from ptmatch.models import (
    EntryStatus,
    Patient,
    Practice,
    RemovalReason,
    Therapist,
    User,
    WaitlistEntry,
)

FINDER_LIMIT = 50


def get_entry(
    session: Session, patient: Patient, practice: Practice | None
) -> WaitlistEntry | None:
    """The patient's row for that practice (or the pool when practice is None), any status."""
    practice_id = practice.id if practice is not None else None
    query = select(WaitlistEntry).where(WaitlistEntry.patient_id == patient.id)
    if practice_id is None:
        query = query.where(WaitlistEntry.practice_id.is_(None))
    else:
        query = query.where(WaitlistEntry.practice_id == practice_id)
    return session.scalar(query)


def list_entries(
    session: Session, patient: Patient, *, active_only: bool = False
) -> list[WaitlistEntry]:
    """The patient's entries (practice loaded), pool first, then by date joined."""
    query = (
        select(WaitlistEntry)
        .where(WaitlistEntry.patient_id == patient.id)
        .options(selectinload(WaitlistEntry.practice))
        .order_by(WaitlistEntry.practice_id.is_not(None), WaitlistEntry.added_at, WaitlistEntry.id)
    )
    if active_only:
        query = query.where(WaitlistEntry.status == EntryStatus.ACTIVE)
    return list(session.scalars(query))


def join_list(
    session: Session,
    now: dt.datetime,
    patient: Patient,
    practice: Practice | None,
    *,
    via_practice_link: bool = False,
    actor: User | None = None,
) -> WaitlistEntry:
    """Put the patient on a practice's list (or the regional pool when practice is None).

    Idempotent: an active entry is returned as it is (a later practice-link visit still
    sets the flag); a removed one is re-activated with a fresh join date.
    """
    if practice is not None and not practice.is_active:
        raise NotAllowed(N_("Diese Praxis nimmt derzeit keine Anmeldungen an."))
    entry = get_entry(session, patient, practice)
    practice_id = practice.id if practice is not None else None
    if entry is None:
        entry = WaitlistEntry(
            patient_id=patient.id,
            practice_id=practice_id,
            status=EntryStatus.ACTIVE,
            priority=0,
            via_practice_link=via_practice_link,
            added_at=now,
        )
        session.add(entry)
    elif entry.status == EntryStatus.ACTIVE:
        if via_practice_link and not entry.via_practice_link:
            entry.via_practice_link = True
        return entry
    else:
        entry.status = EntryStatus.ACTIVE
        entry.added_at = now
        entry.removed_at = None
        entry.removed_reason = None
        entry.referred_to_id = None
        entry.via_practice_link = entry.via_practice_link or via_practice_link
    session.flush()
    audit.record(
        session,
        now,
        "waitlist.joined",
        actor,
        patient_id=patient.id,
        practice_id=practice_id,
        pool=practice_id is None,
        via_practice_link=entry.via_practice_link,
    )
    return entry


def _remove(entry: WaitlistEntry, now: dt.datetime, reason: RemovalReason) -> None:
    entry.status = EntryStatus.REMOVED
    entry.removed_at = now
    entry.removed_reason = reason


def leave_list(
    session: Session,
    now: dt.datetime,
    patient: Patient,
    entry: WaitlistEntry,
    actor: User | None = None,
) -> WaitlistEntry:
    """The patient leaves one list (reason LEFT). Leaving twice is a no-op."""
    if entry.patient_id != patient.id:
        raise NotAllowed(N_("Dieser Listeneintrag gehört nicht zu Ihnen."))
    if entry.status != EntryStatus.ACTIVE:
        return entry
    _remove(entry, now, RemovalReason.LEFT)
    session.flush()
    audit.record(
        session,
        now,
        "waitlist.left",
        actor,
        patient_id=patient.id,
        practice_id=entry.practice_id,
        pool=entry.practice_id is None,
    )
    return entry


def leave_all_for_booking(
    session: Session, now: dt.datetime, patient: Patient
) -> list[WaitlistEntry]:
    """A booking took the patient: every ACTIVE entry → REMOVED (BOOKED_ELSEWHERE), kept so a
    "no fit" release can restore them. Returns the entries changed."""
    entries = list(
        session.scalars(
            select(WaitlistEntry)
            .where(WaitlistEntry.patient_id == patient.id)
            .where(WaitlistEntry.status == EntryStatus.ACTIVE)
        )
    )
    for entry in entries:
        _remove(entry, now, RemovalReason.BOOKED_ELSEWHERE)
    session.flush()
    if entries:
        audit.record(
            session,
            now,
            "waitlist.left_for_booking",
            None,
            patient_id=patient.id,
            entries=len(entries),
        )
    return entries


def restore_after_release(session: Session, now: dt.datetime, patient: Patient) -> int:
    """Re-activate the entries a booking removed (BOOKED_ELSEWHERE). Keeps the original join
    date: the patient did not lose their waiting time. Returns how many were restored."""
    entries = list(
        session.scalars(
            select(WaitlistEntry)
            .where(WaitlistEntry.patient_id == patient.id)
            .where(WaitlistEntry.status == EntryStatus.REMOVED)
            .where(WaitlistEntry.removed_reason == RemovalReason.BOOKED_ELSEWHERE)
        )
    )
    for entry in entries:
        entry.status = EntryStatus.ACTIVE
        entry.removed_at = None
        entry.removed_reason = None
    session.flush()
    if entries:
        audit.record(
            session, now, "waitlist.restored", None, patient_id=patient.id, entries=len(entries)
        )
    return len(entries)


def get_own_entry(session: Session, patient: Patient, entry_id: int) -> WaitlistEntry:
    """An entry of this patient, or InvalidInput (never reveals other patients' rows)."""
    entry = session.get(WaitlistEntry, entry_id)
    if entry is None or entry.patient_id != patient.id:
        raise InvalidInput(N_("Dieser Listeneintrag wurde nicht gefunden."))
    return entry


# --- the practice finder ------------------------------------------------------------------


@dataclass
class FinderFilters:
    distance_km: int = 20
    method: str = ""  # METHODS code
    specialty: str = ""  # PROBLEM_AREAS code
    language: str = ""  # LANGUAGES code
    therapist_gender: str = "any"
    video: bool = False  # only practices that offer video sessions
    group: bool = False  # only practices that offer groups


@dataclass
class PracticeHit:
    practice: Practice
    distance_km: float | None  # None: the patient's or the practice's location is unknown
    therapists: int = 0
    methods: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    video: bool = False
    group: bool = False
    entry: WaitlistEntry | None = None
    names: list[str] = field(default_factory=list)  # the fitting therapists, by name

    @property
    def on_list(self) -> bool:
        return self.entry is not None and self.entry.status == EntryStatus.ACTIVE


def _has_bit(column, catalogue, code: str):
    return column.op("&")(1 << catalogue.by_code[code].bit) != 0


def find_practices(
    session: Session, patient: Patient, problems_mask: int, filters: FinderFilters, today: dt.date
) -> list[PracticeHit]:
    """Active practices with at least one approved therapist who fits the patient and the filters.

    Always applied (the matcher would never offer across them anyway): no therapist exclusion
    touches the patient's problem areas, the patient's age group and insurance are treated,
    the therapist's gender is the one the patient wishes (if any) and they share a language.
    Distance: great-circle from the patient's coordinates; when the patient's location is
    unknown there is no distance filter (the page says so). Nearest first, at most 50.
    """
    t = Therapist
    conditions = [
        t.approved_at.is_not(None),
        Practice.is_active.is_(True),
        t.exclusions_mask.op("&")(problems_mask or 0) == 0,
    ]
    if patient.insurance in INSURANCES.by_code:
        conditions.append(_has_bit(t.insurances_mask, INSURANCES, patient.insurance))
    age = patient.age_on(today)
    if age is not None:
        conditions.append(_has_bit(t.populations_mask, POPULATIONS, population_for_age(age)))
    if patient.therapist_gender_wish in ("f", "m", "d"):
        conditions.append(t.gender == patient.therapist_gender_wish)
    if patient.languages_mask:
        conditions.append(t.languages_mask.op("&")(patient.languages_mask) != 0)
    if filters.method in METHODS.by_code:
        conditions.append(_has_bit(t.methods_mask, METHODS, filters.method))
    if filters.specialty in PROBLEM_AREAS.by_code:
        conditions.append(_has_bit(t.specialties_mask, PROBLEM_AREAS, filters.specialty))
    if filters.language in LANGUAGES.by_code:
        conditions.append(_has_bit(t.languages_mask, LANGUAGES, filters.language))
    if filters.therapist_gender in ("f", "m", "d"):
        conditions.append(t.gender == filters.therapist_gender)
    if filters.video:
        conditions.append(t.offers_video.is_(True))
    if filters.group:
        conditions.append(t.offers_group.is_(True))
    located = patient.lat is not None and patient.lon is not None
    if located:
        min_lat, max_lat, min_lon, max_lon = geo.bounding_box(
            patient.lat, patient.lon, filters.distance_km
        )
        conditions.append(
            or_(
                Practice.lat.is_(None),
                and_(
                    Practice.lat.between(min_lat, max_lat), Practice.lon.between(min_lon, max_lon)
                ),
            )
        )
    rows = session.execute(
        select(Practice, t)
        .join(t, t.practice_id == Practice.id)
        .where(*conditions)
        .order_by(Practice.id)
    ).all()
    hits: dict[int, PracticeHit] = {}
    for practice, therapist in rows:
        hit = hits.get(practice.id)
        if hit is None:
            distance = geo.distance_between(patient.lat, patient.lon, practice.lat, practice.lon)
            if distance is not None and distance > filters.distance_km:
                continue
            hit = hits[practice.id] = PracticeHit(practice, distance)
        hit.therapists += 1
        user = therapist.user
        name = " ".join(x for x in (therapist.title, user.display_name if user else "") if x)
        if name:
            hit.names.append(name)
        hit.methods = sorted(
            set(hit.methods) | set(METHODS.from_mask(therapist.methods_mask)),
            key=METHODS.codes().index,
        )
        hit.languages = sorted(
            set(hit.languages) | set(LANGUAGES.from_mask(therapist.languages_mask)),
            key=LANGUAGES.codes().index,
        )
        hit.video = hit.video or therapist.offers_video
        hit.group = hit.group or therapist.offers_group
    ordered = sorted(
        hits.values(), key=lambda h: (h.distance_km is None, h.distance_km or 0, h.practice.name)
    )
    ordered = ordered[:FINDER_LIMIT]
    if ordered:
        entries = session.scalars(
            select(WaitlistEntry).where(
                WaitlistEntry.patient_id == patient.id,
                WaitlistEntry.practice_id.in_([h.practice.id for h in ordered]),
            )
        ).all()
        by_practice = {e.practice_id: e for e in entries}
        for hit in ordered:
            hit.entry = by_practice.get(hit.practice.id)
    return ordered


def get_practice_by_slug(session: Session, slug: str) -> Practice | None:
    if not slug or len(slug) > 80:
        return None
    practice = session.scalar(select(Practice).where(Practice.slug == slug))
    return practice if practice is not None and practice.is_active else None
