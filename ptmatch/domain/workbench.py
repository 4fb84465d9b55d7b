"""The therapist's waitlist workbench: the practice's own list (filters, sorting, pages), the
regional pool shown pseudonymously, the patient file, and the actions on a list entry.

Lists filter in SQL (bit masks with ``&``, LIKE on the intake text) and load one page with
one joined query plus one count, so a list of 10,000 entries stays fast and there is no
N+1. The own list is scoped to the practice's active entries, which is exactly the rule
of ``access.patient_access`` for identity and clinical data, so rows are not checked one
by one; each page view is audited once with the patient ids it showed. The patient file
loads clinical data only through ``access.load_clinical`` (audited).

Pool rows never carry a name, contact, birth date or exact position: only a pseudonym, age
band, gender, problem areas, preferences, distance band and waiting time.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.util import find_tables

from ptmatch import links
from ptmatch.catalog import INSURANCES, LANGUAGES, METHODS, N_, PROBLEM_AREAS
from ptmatch.domain import access, audit, matching
from ptmatch.domain import filters as hard
from ptmatch.domain.access import pseudonym_of
from ptmatch.domain.errors import InvalidInput, NotAllowed, NotFound
from ptmatch.domain.paging import Page, count_at_most, count_cap, paginate
from ptmatch.domain.practices import get_active_therapist
from ptmatch.models import (
    Availability,
    CareStage,
    ClinicalNote,
    EntryStatus,
    Patient,
    PatientClinical,
    PatientStatus,
    Practice,
    Preference,
    RemovalReason,
    Slot,
    SlotKind,
    Therapist,
    User,
    WaitlistEntry,
    search,
)
from ptmatch.notifications import outbox

BERLIN = ZoneInfo("Europe/Berlin")
KM_PER_DEGREE = 111.195  # mean Earth radius 6371.0 km * pi / 180
EARTH_RADIUS_KM = 6371.0
POOL_MAX_KM = 300  # no patient's radius reaches further (the forms allow 1-300 km)
PER_PAGE = 25
MAX_QUERY_TERMS = 5
FTS_RARE = 200  # SQLite: a word in at most this many intake texts leads the list query

LIST_SORTS = ("waiting", "priority", "deadline")
POOL_SORTS = ("waiting", "distance", "deadline")
KIND_FILTERS = tuple(str(k) for k in SlotKind) + (hard.GROUP_KIND,)
AT_RISK_DAYS = 7  # urgent patients this close to their PTV 11 deadline are "at risk"
MAX_DEADLINE_DAYS = 60
PRIORITIES = [(0, N_("normal")), (1, N_("erhöht")), (2, N_("hoch")), (3, N_("sehr hoch"))]
# Why a practice takes a patient off its list: the code goes to the audit trail, the entry
# itself records REMOVED_BY_PRACTICE (its history stays).
REMOVE_REASONS = [
    ("no_fit", N_("Passt nicht zu unserem Angebot")),
    ("unreachable", N_("Nicht erreichbar")),
    ("not_needed", N_("Kein Bedarf mehr")),
    ("treated_elsewhere", N_("Anderweitig versorgt")),
    ("other", N_("Anderer Grund")),
]
PREFERENCE_FILTERS = ("", "ok", "wanted")  # any / wanted or acceptable / wanted only

AGE_BANDS = [
    (0, 18, N_("unter 18")),
    (18, 25, N_("18–24")),
    (25, 35, N_("25–34")),
    (35, 45, N_("35–44")),
    (45, 55, N_("45–54")),
    (55, 65, N_("55–64")),
    (65, 200, N_("65 und älter")),
]
DISTANCE_BANDS = [
    (5, N_("unter 5 km")),
    (10, N_("5–10 km")),
    (20, N_("10–20 km")),
    (50, N_("20–50 km")),
]
DISTANCE_FAR = N_("über 50 km")
DISTANCE_UNKNOWN = N_("Entfernung unbekannt")
UNKNOWN_DISTANCE_SQ = 1e12
AGE_UNKNOWN = N_("Alter unbekannt")


# --- filters and pages ---------------------------------------------------------------------------


@dataclass
class Filters:
    """What the therapist asked for. Empty values mean "no filter"."""

    age_min: int | None = None
    age_max: int | None = None
    gender: str = ""
    problems: tuple[str, ...] = ()
    fits_profile: bool = False
    q: str = ""
    group: str = ""
    video: str = ""
    urgent: bool = False
    insurance: str = ""
    via_link: bool = False
    waiting_from: dt.date | None = None  # on the list since this day or later
    waiting_to: dt.date | None = None  # on the list since this day or earlier
    kind: str = ""  # fits this kind of appointment (care stage, PTV 11)
    deadline_days: int | None = None  # urgent, PTV 11 deadline within this many days
    sort: str = "waiting"

    def __post_init__(self):
        unknown = [c for c in self.problems if c not in PROBLEM_AREAS.by_code]
        if unknown:
            raise InvalidInput(N_("Bitte nur Einträge aus der Liste wählen."), "problems")
        if self.group not in PREFERENCE_FILTERS:
            raise InvalidInput(N_("Bitte eine Angabe aus der Liste wählen."), "group")
        if self.video not in PREFERENCE_FILTERS:
            raise InvalidInput(N_("Bitte eine Angabe aus der Liste wählen."), "video")
        if self.insurance and self.insurance not in INSURANCES.by_code:
            raise InvalidInput(N_("Bitte eine Angabe aus der Liste wählen."), "insurance")
        if len(self.q) > 100:
            raise InvalidInput(N_("Der Text ist zu lang."), "q")
        if self.kind and self.kind not in KIND_FILTERS:
            raise InvalidInput(N_("Bitte eine Angabe aus der Liste wählen."), "kind")
        if self.deadline_days is not None and not 0 <= self.deadline_days <= MAX_DEADLINE_DAYS:
            raise InvalidInput(N_("Bitte eine Zahl von 0 bis 60 angeben."), "deadline_days")


@dataclass(frozen=True)
class ListRow:
    """One row of the practice's own list (identity and clinical summary: the practice may see
    both)."""

    entry_id: int
    patient_id: int
    first_name: str
    last_name: str
    age: int | None
    gender: str
    patient_status: PatientStatus
    priority: int
    via_link: bool
    added_at: dt.datetime
    waiting_days: int
    problems: list[str]
    urgent: bool
    care_stage: CareStage = CareStage.ANY
    deadline: dt.date | None = None  # the PTV 11 target of an urgent patient

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True)
class PoolRow:
    """One pool patient, pseudonymous: no name, contact, birth date, postcode or coordinates."""

    pseudonym: str
    age_band: str
    gender: str
    problems: list[str]
    methods: list[str]
    languages: list[str]
    insurance: str
    video_pref: str
    group_pref: str
    therapist_gender_wish: str
    distance_band: str
    waiting_weeks: int
    care_stage: CareStage = CareStage.ANY
    deadline: dt.date | None = None


@dataclass
class PatientFile:
    """Everything the patient detail page shows to a therapist of a practice with access."""

    patient: Patient
    clinical: object | None
    age: int | None
    availability: list[Availability]
    entries: list[WaitlistEntry]  # this practice's entries for the patient, with history
    active_entry: WaitlistEntry | None
    notes: list[ClinicalNote] = field(default_factory=list)


# --- small helpers -------------------------------------------------------------------------------


def local_today(now: dt.datetime) -> dt.date:
    return now.astimezone(BERLIN).date()


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _age(birth_date: dt.date | None, today: dt.date) -> int | None:
    if birth_date is None:
        return None
    return (
        today.year
        - birth_date.year
        - ((today.month, today.day) < (birth_date.month, birth_date.day))
    )


def _local_day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=BERLIN).astimezone(dt.UTC)


def age_band(age: int | None) -> str:
    if age is None:
        return AGE_UNKNOWN
    for low, high, label in AGE_BANDS:
        if low <= age < high:
            return label
    return AGE_BANDS[-1][2]


def distance_band(km: float) -> str:
    for limit, label in DISTANCE_BANDS:
        if km < limit:
            return label
    return DISTANCE_FAR


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _problems_expr():
    return func.coalesce(PatientClinical.problems_mask, 0)


def _preference_condition(column, wanted: str):
    if wanted == "wanted":
        return column == Preference.WANTED
    if wanted == "ok":
        return column.in_([Preference.WANTED, Preference.ACCEPTABLE])
    return None


def _shared_conditions(f: Filters, therapist: Therapist, today: dt.date) -> list:
    """Filters that work on both tabs (own list and pool)."""
    conds = []
    if f.age_min is not None:
        conds.append(Patient.birth_date <= _years_before(today, f.age_min))
    if f.age_max is not None:
        conds.append(Patient.birth_date > _years_before(today, f.age_max + 1))
    if f.gender:
        conds.append(Patient.gender == f.gender)
    problems = _problems_expr()
    if f.problems:
        conds.append(problems.bitwise_and(PROBLEM_AREAS.to_mask(f.problems)) != 0)
    if f.fits_profile:
        conds.extend(_fits_profile_conditions(therapist))
    for column, wanted in ((Patient.group_pref, f.group), (Patient.video_pref, f.video)):
        cond = _preference_condition(column, wanted)
        if cond is not None:
            conds.append(cond)
    if f.insurance:
        conds.append(Patient.insurance == f.insurance)
    if f.waiting_from is not None:
        conds.append(WaitlistEntry.added_at >= _local_day_start(f.waiting_from))
    if f.waiting_to is not None:
        conds.append(WaitlistEntry.added_at < _local_day_start(f.waiting_to + dt.timedelta(days=1)))
    if f.kind:
        conds.extend(hard.conditions(_target(therapist, today, kind=f.kind), names=("stage",)))
    if f.deadline_days is not None:
        conds.append(deadline_within(today, f.deadline_days))
    return conds


def _text_condition(session: Session, dialect: str, term: str) -> tuple:
    """(condition, by_patient): the intake text contains `term` (case-insensitive), asked so
    that an index answers:
    ILIKE on PostgreSQL (the pg_trgm GIN index), MATCH on SQLite's FTS5 trigram table for
    terms of three characters or more (ptmatch.models.search); LIKE otherwise.

    On SQLite a rare word's few patients are looked up first and lead the query; a common
    word (more than FTS_RARE texts) is checked row by row while the list is read in its
    order, which finds a page after a few dozen rows instead of reading all the matches.
    `by_patient`: the query should start from those patients (SQLite's statistics know only
    the average list, and a long list would be read to its end for a few rows)."""
    if dialect == "postgresql":
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return PatientClinical.description.ilike(f"%{escaped}%", escape="\\"), False
    if dialect == "sqlite" and len(term) >= search.FTS_MIN_TERM:
        matches = select(search.fts.c.rowid).where(
            search.fts.c[search.FTS_TABLE].match(search.fts_phrase(term))
        )
        rare = session.scalars(matches.limit(FTS_RARE + 1)).all()
        if len(rare) <= FTS_RARE:
            return WaitlistEntry.patient_id.in_(rare), bool(rare)
        return PatientClinical.patient_id.in_(matches), False
    return PatientClinical.description.icontains(term, autoescape=True), False


def deadline_within(today: dt.date, days: int):
    """Urgent, and the PTV 11 deadline (form date + 28 days) at most `days` days away."""
    return and_(
        PatientClinical.urgent.is_(True),
        Patient.ptv11_date <= today + dt.timedelta(days=days - matching.DEADLINE_DAYS),
    )


def _order(f: Filters, *rest):
    """`rest`, after the nearest PTV 11 deadline when sorted by deadline (none: last)."""
    return (matching.deadline_key(), *rest) if f.sort == "deadline" else rest


def _target(therapist: Therapist, today: dt.date, *, kind: str | None = None) -> hard.Target:
    """The therapist as the hard filters see them, without a slot (the pool view)."""
    return hard.Target(
        today=today,
        day=today,
        therapist_gender=therapist.gender,
        exclusions_mask=therapist.exclusions_mask or 0,
        methods_mask=therapist.methods_mask or 0,
        languages_mask=therapist.languages_mask or 0,
        insurances_mask=therapist.insurances_mask or 0,
        populations_mask=therapist.populations_mask or 0,
        offers_in_person=bool(therapist.offers_in_person),
        offers_video=bool(therapist.offers_video),
        kind=kind or None,
    )


def _fits_profile_conditions(therapist: Therapist) -> list:
    """'Fits my profile': at least one specialty and no exclusion touched.

    A therapist without any specialty gets only the exclusion rule (otherwise the filter
    would always be empty).
    """
    problems = _problems_expr()
    conds = []
    if therapist.exclusions_mask:
        conds.append(problems.bitwise_and(therapist.exclusions_mask) == 0)
    if therapist.specialties_mask:
        conds.append(problems.bitwise_and(therapist.specialties_mask) != 0)
    return conds


def _joined(query, conds: list, *, count: bool = False, user: bool = False):
    """Entries joined to their patients (and accounts, intake) under `conds`. A count skips
    the intake join when no condition needs it: that join is most of a count's cost."""
    query = query.select_from(WaitlistEntry).join(Patient, Patient.id == WaitlistEntry.patient_id)
    if user:
        query = query.outerjoin(User, User.id == Patient.user_id)
    clinical = PatientClinical.__table__
    if not count or any(clinical in find_tables(c, check_columns=True) for c in conds):
        query = query.outerjoin(
            PatientClinical, PatientClinical.patient_id == WaitlistEntry.patient_id
        )
    return query.where(*conds)


# --- the practice's own list ---------------------------------------------------------------------


def list_waitlist(
    session: Session,
    now: dt.datetime,
    therapist: Therapist,
    filters: Filters,
    page: int = 1,
    per_page: int = PER_PAGE,
) -> Page:
    """One page of the practice's active waitlist, filtered and sorted in SQL; audited once."""
    today = local_today(now)
    dialect = session.get_bind().dialect.name
    texts = [_text_condition(session, dialect, t) for t in filters.q.split()[:MAX_QUERY_TERMS]]
    practice = WaitlistEntry.practice_id
    if any(by_patient for _cond, by_patient in texts):
        # "+ 0" keeps SQLite off the list's index, so the rare word's patients lead.
        practice = practice + 0
    conds = [
        practice == therapist.practice_id,
        WaitlistEntry.status == EntryStatus.ACTIVE,
        Patient.status != PatientStatus.DELETED,
        *_shared_conditions(filters, therapist, today),
        *(cond for cond, _by_patient in texts),
    ]
    if filters.urgent:
        conds.append(PatientClinical.urgent.is_(True))
    if filters.via_link:
        conds.append(WaitlistEntry.via_practice_link.is_(True))

    # Counted only up to a cap: a common word matches thousands of entries, and an exact
    # count would visit every one of them for the "more than N entries" the page shows.
    cap = count_cap(page, per_page)
    counted = count_at_most(session, _joined(select(WaitlistEntry.id), conds, count=True), cap)
    total, capped = min(counted, cap), counted > cap
    page, offset = paginate(total, page, per_page, capped=capped)
    if filters.sort == "priority":
        order = (WaitlistEntry.priority.desc(), WaitlistEntry.added_at, WaitlistEntry.id)
    else:
        order = _order(filters, WaitlistEntry.added_at, WaitlistEntry.id)
    query = (
        _joined(
            select(
                WaitlistEntry.id,
                WaitlistEntry.patient_id,
                WaitlistEntry.priority,
                WaitlistEntry.via_practice_link,
                WaitlistEntry.added_at,
                Patient.first_name,
                Patient.last_name,
                Patient.birth_date,
                Patient.gender,
                Patient.status,
                Patient.care_stage,
                Patient.ptv11_date,
                PatientClinical.problems_mask,
                PatientClinical.urgent,
            ),
            conds,
        )
        .order_by(*order)
        .limit(per_page)
        .offset(offset)
    )
    rows = [
        ListRow(
            entry_id=r.id,
            patient_id=r.patient_id,
            first_name=r.first_name,
            last_name=r.last_name,
            age=_age(r.birth_date, today),
            gender=r.gender,
            patient_status=r.status,
            priority=r.priority,
            via_link=r.via_practice_link,
            added_at=r.added_at,
            waiting_days=(now - r.added_at).days,
            problems=PROBLEM_AREAS.from_mask(r.problems_mask),
            urgent=bool(r.urgent),
            care_stage=CareStage(r.care_stage),
            deadline=matching.deadline_of(bool(r.urgent), r.ptv11_date),
        )
        for r in session.execute(query)
    ]
    if rows:
        audit.record(
            session,
            now,
            "workbench.list_viewed",
            therapist.user,
            practice_id=therapist.practice_id,
            patient_ids=[r.patient_id for r in rows],
        )
    return Page(items=rows, total=total, page=page, per_page=per_page, capped=capped)


# --- the regional pool ---------------------------------------------------------------------------


def pool_available(therapist: Therapist) -> bool:
    practice = therapist.practice
    return bool(
        practice and practice.accepts_pool and practice.lat is not None and practice.lon is not None
    )


def _pool_conditions(
    now: dt.datetime, therapist: Therapist, filters: Filters, target: hard.Target | None = None
):
    """(conditions, squared distance expression, practice coordinates) of the pool view."""
    practice = therapist.practice
    today = local_today(now)
    lat0, lon0 = practice.lat, practice.lon
    km_per_lon = KM_PER_DEGREE * math.cos(math.radians(lat0))
    dy = (Patient.lat - lat0) * KM_PER_DEGREE
    dx = (Patient.lon - lon0) * km_per_lon
    dist2 = dx * dx + dy * dy
    box_lat = POOL_MAX_KM / KM_PER_DEGREE
    box_lon = POOL_MAX_KM / max(km_per_lon, 1.0)
    own = aliased(WaitlistEntry)
    on_own_list = (
        select(own.id)
        .where(
            own.patient_id == WaitlistEntry.patient_id,
            own.practice_id == practice.id,
            own.status == EntryStatus.ACTIVE,
        )
        .exists()
    )
    within = and_(
        Patient.lat.between(lat0 - box_lat, lat0 + box_lat),
        Patient.lon.between(lon0 - box_lon, lon0 + box_lon),
        dist2 <= Patient.max_distance_km * Patient.max_distance_km,
    )
    conds = [
        WaitlistEntry.practice_id.is_(None),
        WaitlistEntry.status == EntryStatus.ACTIVE,
        # Unknown location is not filtered by distance (the rule of ptmatch.domain.geo).
        or_(within, Patient.lat.is_(None), Patient.lon.is_(None)),
        ~on_own_list,
        *hard.conditions(target or _target(therapist, today)),
        *_shared_conditions(filters, therapist, today),
    ]
    return conds, dist2, (lat0, lon0)


def pool_patient_ids(
    session: Session, now: dt.datetime, therapist: Therapist, slot: Slot | None = None
) -> set[int]:
    """Every pool patient the pool view shows (no other filter), or with `slot` those it
    shows for that slot: the hard filters of matching, from the same table."""
    target = matching.build_context(session, slot, now).target() if slot is not None else None
    conds, _d, _o = _pool_conditions(now, therapist, Filters(), target)
    return set(session.scalars(_joined(select(Patient.id), conds, user=True)))


def list_pool(
    session: Session,
    now: dt.datetime,
    therapist: Therapist,
    filters: Filters,
    page: int = 1,
    per_page: int = PER_PAGE,
) -> Page:
    """One page of pool patients within reach of the practice who fit the therapist, pseudonymised.

    Reach is the patient's own radius (max_distance_km) around the practice, tested in SQL
    with the equirectangular approximation (inside a lat/lon box that can use the index);
    the distance band shown is the great-circle distance. A patient without coordinates is
    not filtered by distance (ptmatch.domain.geo) and shows as "distance unknown". The hard
    filters are the rows of ptmatch.domain.filters that need no slot (as matching's).
    """
    if not pool_available(therapist):
        return Page(items=[], total=0, page=1, per_page=per_page)
    today = local_today(now)
    conds, dist2, (lat0, lon0) = _pool_conditions(now, therapist, filters)

    total = session.scalar(_joined(select(func.count()), conds, count=True, user=True)) or 0
    page, offset = paginate(total, page, per_page)
    if filters.sort == "distance":
        # Unknown locations last on both engines (NULL ordering differs between them).
        order = (
            func.coalesce(dist2, UNKNOWN_DISTANCE_SQ),
            WaitlistEntry.added_at,
            WaitlistEntry.id,
        )
    else:
        order = _order(filters, WaitlistEntry.added_at, WaitlistEntry.id)
    query = (
        _joined(
            select(
                Patient.id,
                Patient.care_stage,
                Patient.ptv11_date,
                PatientClinical.urgent,
                Patient.birth_date,
                Patient.gender,
                Patient.lat,
                Patient.lon,
                Patient.methods_mask,
                Patient.languages_mask,
                Patient.insurance,
                Patient.video_pref,
                Patient.group_pref,
                Patient.therapist_gender_wish,
                WaitlistEntry.added_at,
                PatientClinical.problems_mask,
            ),
            conds,
            user=True,
        )
        .order_by(*order)
        .limit(per_page)
        .offset(offset)
    )
    rows = [
        PoolRow(
            pseudonym=pseudonym_of(session, r.id),
            age_band=age_band(_age(r.birth_date, today)),
            gender=r.gender,
            problems=PROBLEM_AREAS.from_mask(r.problems_mask),
            methods=METHODS.from_mask(r.methods_mask),
            languages=LANGUAGES.from_mask(r.languages_mask),
            insurance=r.insurance,
            video_pref=str(r.video_pref),
            group_pref=str(r.group_pref),
            therapist_gender_wish=r.therapist_gender_wish,
            distance_band=(
                DISTANCE_UNKNOWN
                if r.lat is None or r.lon is None
                else distance_band(great_circle_km(lat0, lon0, r.lat, r.lon))
            ),
            waiting_weeks=max(0, (now - r.added_at).days // 7),
            care_stage=CareStage(r.care_stage),
            deadline=matching.deadline_of(bool(r.urgent), r.ptv11_date),
        )
        for r in session.execute(query)
    ]
    return Page(items=rows, total=total, page=page, per_page=per_page)


# --- the patient file -----------------------------------------------------------------------------


def _require_therapist(session: Session, actor: User) -> Therapist:
    therapist = get_active_therapist(session, actor)
    if therapist is None:
        raise NotAllowed(N_("Ihr Zugang ist noch nicht freigeschaltet."))
    return therapist


def load_patient_file(
    session: Session, now: dt.datetime, actor: User, patient_id: int
) -> PatientFile:
    """The full record for a therapist whose practice may see it (audited clinical load).

    NotFound when the patient does not exist or is not visible at all; NotAllowed when only
    the pseudonymous summary is (a pool patient).
    """
    therapist = _require_therapist(session, actor)
    patient = session.get(Patient, patient_id)
    if patient is None or patient.status == PatientStatus.DELETED:
        raise NotFound(N_("Nicht gefunden."))
    allowed = access.patient_access(session, actor, patient, now)
    if not allowed.any:
        raise NotFound(N_("Nicht gefunden."))
    if not (allowed.identity and allowed.clinical):
        raise NotAllowed(N_("Nur als Pseudonym sichtbar."))
    clinical = access.load_clinical(session, actor, patient, now, purpose="patient_file")
    entries = list(
        session.scalars(
            select(WaitlistEntry)
            .where(
                WaitlistEntry.patient_id == patient.id,
                WaitlistEntry.practice_id == therapist.practice_id,
            )
            .order_by(WaitlistEntry.added_at)
        )
    )
    notes = list(
        session.scalars(
            select(ClinicalNote)
            .where(
                ClinicalNote.patient_id == patient.id,
                ClinicalNote.practice_id == therapist.practice_id,
            )
            .order_by(ClinicalNote.created_at.desc(), ClinicalNote.id.desc())
        )
    )
    active = next((e for e in entries if e.status == EntryStatus.ACTIVE), None)
    return PatientFile(
        patient=patient,
        clinical=clinical,
        age=_age(patient.birth_date, local_today(now)),
        availability=list(patient.availability),
        entries=entries,
        active_entry=active,
        notes=notes,
    )


def referral_targets(session: Session, therapist: Therapist) -> list[tuple[int, str]]:
    """Other active practices a patient can be referred to."""
    rows = session.execute(
        select(Practice.id, Practice.name)
        .where(Practice.is_active.is_(True), Practice.id != therapist.practice_id)
        .order_by(Practice.name)
    )
    return [(r.id, r.name) for r in rows]


# --- actions on an entry --------------------------------------------------------------------------


def get_own_entry(session: Session, actor: User, entry_id: int) -> tuple[Therapist, WaitlistEntry]:
    """The active entry `entry_id` on the actor's practice list, or NotFound."""
    therapist = _require_therapist(session, actor)
    entry = session.get(WaitlistEntry, entry_id)
    if (
        entry is None
        or entry.practice_id != therapist.practice_id
        or entry.status != EntryStatus.ACTIVE
    ):
        raise NotFound(N_("Nicht gefunden."))
    return therapist, entry


def set_priority(
    session: Session, now: dt.datetime, actor: User, entry_id: int, priority: int
) -> WaitlistEntry:
    """Set the practice's priority for a patient on its list (0 = normal ... 3 = very high)."""
    therapist, entry = get_own_entry(session, actor, entry_id)
    if isinstance(priority, bool) or priority not in {value for value, _ in PRIORITIES}:
        raise InvalidInput(N_("Bitte eine Angabe aus der Liste wählen."), "priority")
    previous = entry.priority
    entry.priority = priority
    session.flush()
    audit.record(
        session,
        now,
        "waitlist.priority_set",
        actor,
        patient_id=entry.patient_id,
        practice_id=therapist.practice_id,
        entry_id=entry.id,
        previous=previous,
        priority=priority,
    )
    return entry


def add_clinical_note(
    session: Session, now: dt.datetime, actor: User, patient_id: int, text: str
) -> ClinicalNote:
    """A therapist's clinical note on a patient the practice may see clinically."""
    therapist = _require_therapist(session, actor)
    patient = session.get(Patient, patient_id)
    if patient is None or patient.status == PatientStatus.DELETED:
        raise NotFound(N_("Nicht gefunden."))
    if not access.can_view_clinical(session, actor, patient, now):
        raise NotFound(N_("Nicht gefunden."))
    text = (text or "").strip()
    if not text:
        raise InvalidInput(N_("Bitte ausfüllen."), "text")
    if len(text) > 5000:
        raise InvalidInput(N_("Der Text ist zu lang."), "text")
    note = ClinicalNote(
        patient_id=patient.id,
        practice_id=therapist.practice_id,
        author_id=actor.id,
        text=text,
        created_at=now,
    )
    session.add(note)
    session.flush()
    audit.record(
        session,
        now,
        "clinical.note_added",
        actor,
        patient_id=patient.id,
        practice_id=therapist.practice_id,
        note_id=note.id,
    )
    return note


def _mail_patient(
    session: Session, now: dt.datetime, patient: Patient, kind: str, key: str
) -> None:
    if patient.user is not None:
        outbox.enqueue(
            session,
            now,
            kind=kind,
            to_user=patient.user,
            link_path=links.patient_home(),
            dedupe_key=key,
        )


def refer_entry(
    session: Session, now: dt.datetime, actor: User, entry_id: int, target_practice_id: int
) -> WaitlistEntry:
    """Move a patient from this practice's list to another practice's list.

    The old entry is kept (REMOVED, reason REFERRED, pointing at the target); at the target
    a new entry is made, or the patient's earlier entry there is reactivated. The waiting
    time carries over. The patient gets a generic mail.
    """
    therapist, entry = get_own_entry(session, actor, entry_id)
    target = (
        session.get(Practice, target_practice_id) if isinstance(target_practice_id, int) else None
    )
    if target is None or not target.is_active or target.id == therapist.practice_id:
        raise InvalidInput(N_("Bitte eine andere Praxis wählen."), "target")
    entry.status = EntryStatus.REMOVED
    entry.removed_at = now
    entry.removed_reason = RemovalReason.REFERRED
    entry.referred_to_id = target.id
    moved = session.scalar(
        select(WaitlistEntry).where(
            WaitlistEntry.patient_id == entry.patient_id, WaitlistEntry.practice_id == target.id
        )
    )
    if moved is None:
        moved = WaitlistEntry(
            patient_id=entry.patient_id,
            practice_id=target.id,
            status=EntryStatus.ACTIVE,
            priority=0,
            via_practice_link=False,
            added_at=entry.added_at,
        )
        session.add(moved)
    elif moved.status != EntryStatus.ACTIVE:
        moved.status = EntryStatus.ACTIVE
        moved.removed_at = None
        moved.removed_reason = None
        moved.referred_to_id = None
        moved.added_at = min(moved.added_at, entry.added_at)
    session.flush()
    audit.record(
        session,
        now,
        "waitlist.referred",
        actor,
        patient_id=entry.patient_id,
        practice_id=therapist.practice_id,
        entry_id=entry.id,
        target_practice_id=target.id,
        target_entry_id=moved.id,
    )
    _mail_patient(
        session,
        now,
        entry.patient,
        "waitlist_referred",
        f"waitlist_referred:{entry.id}:{now:%Y%m%d%H%M%S}",
    )
    return moved


def remove_entry(
    session: Session, now: dt.datetime, actor: User, entry_id: int, reason: str
) -> WaitlistEntry:
    """Take a patient off this practice's list with a reason; the entry is kept, the patient
    gets a generic mail."""
    therapist, entry = get_own_entry(session, actor, entry_id)
    if reason not in {code for code, _ in REMOVE_REASONS}:
        raise InvalidInput(N_("Bitte einen Grund wählen."), "reason")
    entry.status = EntryStatus.REMOVED
    entry.removed_at = now
    entry.removed_reason = RemovalReason.REMOVED_BY_PRACTICE
    session.flush()
    audit.record(
        session,
        now,
        "waitlist.removed",
        actor,
        patient_id=entry.patient_id,
        practice_id=therapist.practice_id,
        entry_id=entry.id,
        reason=reason,
    )
    _mail_patient(
        session,
        now,
        entry.patient,
        "waitlist_removed",
        f"waitlist_removed:{entry.id}:{now:%Y%m%d%H%M%S}",
    )
    return entry
