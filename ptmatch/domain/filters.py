"""The hard filters: one table, read by every place that asks "could this patient be offered
this?" — the matching prefilter (``matching``), the regional pool view and the workbench's
"fits" filters (``workbench``), and group seats (``groups``, through matching).

A hard filter never bends: a patient who fails one is never a candidate. Each row of
``HARD_FILTERS`` is one rule with its name, what it needs to be decided (the therapist only,
or a slot) and a builder that turns a ``Target`` into one SQL condition on ``Patient`` (with
``PatientClinical`` outer-joined by the query, for the exclusions) — or None when the rule
does not apply to that target. Since issue 17 every rule but the exclusions reads only
columns of the patient row, served by one covering index: what lives in other tables
(account, consents and status as ``matchable``, the weekly windows as half-hour masks) is
copied onto the row by ``ptmatch.domain.match_columns``. A page without a slot (the pool
view) uses the rows that need only the therapist; matching uses every row. So the pool
view, given a slot, shows exactly the patients matching could offer it (a property test
checks this on random data).

To add a filter: add a builder and a row here (and, if the pages show it, a line in the
workbench form). The offer-state rules of matching (no second offer for the same slot, no
overlapping live offer) are about offers, not patients, and stay in ``matching``.

A soft wish only adds points (``matching.score``); a wish the patient marked "only" is hard:
methods (``methods_only``), therapist gender (``gender_only``), languages
(``languages_only``), video (``video_only`` with video "wanted"; video "no" is always hard).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import and_, false, func, not_, or_, select, true
from sqlalchemy.orm import Session

from ptmatch.catalog import INSURANCES, POPULATIONS
from ptmatch.domain import match_columns
from ptmatch.models import (
    CareStage,
    Patient,
    PatientClinical,
    Preference,
    SlotKind,
)
from ptmatch.models.patients import AVAIL_COLUMNS

GROUP_KIND = "group"  # a group programme's seat (no SlotKind of its own)
# Slot kinds that need a Sprechstunde first: the patient holds a PTV 11 form.
AFTER_SPRECHSTUNDE = (SlotKind.PROBATORIK, SlotKind.AKUT, SlotKind.THERAPY_PLACE)
# Which care stages accept which kind of appointment.
STAGES_FOR_KIND: dict[str, tuple[CareStage, ...]] = {
    SlotKind.SPRECHSTUNDE: (CareStage.SPRECHSTUNDE, CareStage.ANY),
    SlotKind.PROBATORIK: (CareStage.THERAPY, CareStage.ANY),
    SlotKind.AKUT: (CareStage.THERAPY, CareStage.ANY),
    SlotKind.THERAPY_PLACE: (CareStage.THERAPY, CareStage.ANY),
    GROUP_KIND: (CareStage.GROUP, CareStage.ANY),
}
# Age-based populations: (code, youngest age, age limit exclusive).
POPULATION_AGES = (
    ("children", 0, 14),
    ("adolescents", 14, 18),
    ("adults", 18, 65),
    ("seniors", 65, 200),
)


@dataclass(frozen=True)
class Target:
    """What the hard filters look at: the therapist, and the slot when there is one."""

    today: dt.date  # Berlin date of `now` (pauses end on a day)
    day: dt.date  # the day ages are measured on: the slot's, else today
    therapist_gender: str
    exclusions_mask: int
    methods_mask: int
    languages_mask: int
    insurances_mask: int
    populations_mask: int
    offers_in_person: bool = True
    offers_video: bool = True
    # The slot; all None for a page without one (the pool view).
    kind: str | None = None  # a SlotKind value, or GROUP_KIND (the pool view may name one)
    video: bool | None = None
    weekday: int | None = None  # Berlin wall clock, 0 = Monday
    start_min: int | None = None
    end_min: int | None = None
    # In person in a room marked accessible (issue 19); a slot without a room is not.
    accessible: bool = False

    @property
    def has_slot(self) -> bool:
        return self.weekday is not None


@dataclass(frozen=True)
class HardFilter:
    name: str
    needs_slot: bool  # True: needs the slot's time (the pool view, without one, skips it)
    rule: str  # what it means, in a sentence
    # (target, the patient entity: ``Patient`` or an alias of it) -> a condition, or None
    build: Callable[[Target, type], object | None]
    # Reads only columns of the patient row (``ix_patients_match`` decides it); False: joins.
    on_row: bool = True


# --- the builders --------------------------------------------------------------------------------


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def problems_expr():
    return func.coalesce(PatientClinical.problems_mask, 0)


def _matchable(t: Target, p):
    """Status, consents and account are one column (``match_columns``); the pause is dated."""
    return and_(
        p.matchable == true(),
        or_(p.paused_until.is_(None), p.paused_until <= t.today),
    )


def _insurance(t: Target, p):
    return p.insurance.in_(INSURANCES.from_mask(t.insurances_mask) or ["-"])


def _exclusions(t: Target, p):
    if not t.exclusions_mask:
        return None
    return problems_expr().bitwise_and(t.exclusions_mask) == 0


def _population(t: Target, p):
    wanted = set(POPULATIONS.from_mask(t.populations_mask))
    ranges = [
        and_(
            p.birth_date <= _years_before(t.day, youngest),
            p.birth_date > _years_before(t.day, limit),
        )
        for code, youngest, limit in POPULATION_AGES
        if code in wanted
    ]
    if not ranges:
        return None
    return or_(p.birth_date.is_(None), *ranges)  # unknown age is not excluded


def _gender_wish(t: Target, p):
    return or_(
        p.therapist_gender_wish.in_(["any", t.therapist_gender]),
        p.gender_only.is_(False),
    )


def _languages(t: Target, p):
    return or_(
        p.languages_mask.bitwise_and(t.languages_mask) != 0,
        p.languages_only.is_(False),
    )


def _methods(t: Target, p):
    return or_(
        p.methods_only.is_(False),
        p.methods_mask == 0,
        p.methods_mask.bitwise_and(t.methods_mask) != 0,
    )


def _video_only(p):
    return and_(p.video_only.is_(True), p.video_pref == Preference.WANTED)


def _modality(t: Target, p):
    """Video "no" never gets a video slot; video "wanted, only" never an in-person one."""
    if t.video is not None:
        return p.video_pref != Preference.NO if t.video else not_(_video_only(p))
    conds = []  # no slot: what the therapist offers at all
    if not t.offers_in_person:
        conds.append(p.video_pref != Preference.NO)
    if not t.offers_video:
        conds.append(not_(_video_only(p)))
    return and_(*conds) if conds else None


def _stage(t: Target, p):
    if t.kind is None:
        return None
    stages = STAGES_FOR_KIND[t.kind]
    cond = p.care_stage.in_(list(stages))
    if t.kind in AFTER_SPRECHSTUNDE:
        return and_(cond, p.ptv11_date.is_not(None))
    return cond


def _room(t: Target, p):
    """Issue 19: a patient who needs an accessible room gets video, or in person only in an
    accessible room."""
    if t.video is None or t.video or t.accessible:
        return None
    return p.needs_accessible_room.is_(False)


def availability_condition(weekday: int, start_min: int, end_min: int, p=Patient):
    """The weekly availability covers every half-hour the session touches (the weekday's
    mask on the row, ``match_columns``)."""
    need = match_columns.needed_mask(start_min, end_min)
    if need is None:
        return false()
    return avail_column(weekday, p).bitwise_and(need) == need


def avail_column(weekday: int, p=Patient):
    return getattr(p, AVAIL_COLUMNS[weekday])


def _availability(t: Target, p):
    return availability_condition(t.weekday, t.start_min, t.end_min, p)


HARD_FILTERS: tuple[HardFilter, ...] = (
    HardFilter(
        "matchable",
        False,
        "active, not paused, both consents; a verified, enabled account or a phone "
        "registration whose consent the secretariat recorded",
        _matchable,
    ),
    HardFilter(
        "gender_wish", False, "the therapist's gender, when the patient wants only it", _gender_wish
    ),
    HardFilter(
        "languages",
        False,
        "a shared language, when the patient marked languages 'only'",
        _languages,
    ),
    HardFilter(
        "methods", False, "a shared method, when the patient marked methods 'only'", _methods
    ),
    HardFilter("insurance", False, "an insurance the therapist accepts", _insurance),
    HardFilter(
        "exclusions",
        False,
        "no problem area the therapist excludes (always hard)",
        _exclusions,
        on_row=False,
    ),
    HardFilter("population", False, "age within one of the therapist's age groups", _population),
    HardFilter("modality", False, "the slot's modality (or the therapist's) fits", _modality),
    HardFilter(
        "stage",
        False,
        "the slot's kind fits the care stage; after a Sprechstunde only with a PTV 11 date",
        _stage,
    ),
    HardFilter(
        "room",
        False,
        "in person only in an accessible room, for a patient who needs one",
        _room,
    ),
    HardFilter(
        "availability",
        True,
        "the weekly windows cover every half-hour the session touches",
        _availability,
    ),
)


def conditions(target: Target, *, names=None, entity=Patient, on_row: bool | None = None) -> list:
    """The SQL conditions of every hard filter that applies to `target` (or only `names`), on
    `entity` (``Patient`` or an alias). `on_row`: only the filters that read the patient row
    alone (True) or only the others (False). A target without a slot gets only the filters
    that need none."""
    conds = []
    for f in HARD_FILTERS:
        if names is not None and f.name not in names:
            continue
        if on_row is not None and f.on_row != on_row:
            continue
        if f.needs_slot and not target.has_slot:
            continue
        cond = f.build(target, entity)
        if cond is not None:
            conds.append(cond)
    return conds


def passes(session: Session, target: Target, patient_id: int) -> list[str]:
    """The names of the hard filters this patient fails for `target` (empty: a candidate as
    far as the patient goes). The same SQL as the prefilter, one filter at a time."""
    failed = []
    for f in HARD_FILTERS:
        if f.needs_slot and not target.has_slot:
            continue
        cond = f.build(target, Patient)
        if cond is None:
            continue
        query = (
            select(Patient.id)
            .outerjoin(PatientClinical, PatientClinical.patient_id == Patient.id)
            .where(Patient.id == patient_id, cond)
        )
        if session.scalar(query) is None:
            failed.append(f.name)
    return failed
