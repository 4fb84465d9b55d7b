"""Who gets offered a free slot: hard filters in SQL, then a documented score with reasons.

Hard filters (never bend; all in the SQL prefilter, so 100k waiting patients never reach
Python):

- every row of ``ptmatch.domain.filters.HARD_FILTERS`` (matchable, hard wishes, insurance,
  exclusions, population, modality, care stage against the slot's kind, availability for
  the whole session) — the one definition the pool view and the workbench share;
- on this practice's active list, or in the regional pool when the practice takes pool
  patients and has coordinates, within the patient's own ``max_distance_km`` (an
  equirectangular test inside a lat/lon box the index can use; a patient without
  coordinates is not filtered by distance, see ``ptmatch.domain.geo``);
- no offer for this slot yet (any answer), no declined or accepted offer for a slot this
  one re-posts, and no pending, live offer for a slot that overlaps it in time.

Score (higher first), each part shown to the therapist as a reason:

====================  ==========================================================
waiting time          ``WAIT_POINTS`` per full 30 days on the list, at most 24 months
urgency (PTV 11)      ``URGENT_POINTS`` when the intake is marked urgent
PTV 11 deadline       ``DEADLINE_STEPS`` as the 4-week target (form date + 28 days) nears
practice priority     ``PRIORITY_POINTS`` per level (0-3) set on this practice's list
via practice link     ``LINK_POINTS`` when the patient came through the practice's link
specialty fit         ``SPECIALTY_POINTS`` when a problem area is a therapist specialty
method wish           ``METHOD_POINTS`` when a wished method is one the therapist offers
distance              ``DISTANCE_POINTS`` by band (< 5 km, < 10 km, < 20 km)
video wish            ``VIDEO_POINTS`` for a video slot when video is "wanted"
gender wish           ``GENDER_POINTS`` when a (soft) therapist-gender wish is met
language              ``LANGUAGE_POINTS`` for a shared language when languages are soft
====================  ==========================================================

Ties: the nearest PTV 11 deadline first (urgent patients with a form date), then longest
waiting (the list entry's date), then the lower patient id — so the order is total and
deterministic. The score is computed in SQL (ORDER BY ... LIMIT) with
CASE expressions that mirror the pure Python functions below exactly (same constants,
same thresholds, same float arithmetic); the Python side recomputes score and reasons for
the rows returned. A test checks the two agree.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, false, func, literal, or_, select, text, true, union_all
from sqlalchemy.orm import Session, aliased

from ptmatch.catalog import METHODS, N_
from ptmatch.domain import filters
from ptmatch.models import (
    EntryStatus,
    Modality,
    Offer,
    OfferStatus,
    Patient,
    PatientClinical,
    PatientStatus,
    Practice,
    Preference,
    Room,
    Slot,
    SlotStatus,
    Therapist,
    WaitlistEntry,
)

BERLIN = ZoneInfo("Europe/Berlin")
KM_PER_DEGREE = 111.195  # mean Earth radius 6371 km * pi / 180 (as the workbench)
# The pool test (see _reach_condition): one index arm per radius in use, or per band of radii
# when patients chose very many different ones (the forms allow 1-300 km).
MAX_REACH_ARMS = 40
REACH_BANDS_KM = (10, 20, 30, 50, 100, 200, 300)

WAIT_POINTS = 4
WAIT_MONTH_DAYS = 30
WAIT_MAX_MONTHS = 24
URGENT_POINTS = 40
PRIORITY_POINTS = 15
PRIORITY_MAX = 3
LINK_POINTS = 20
SPECIALTY_POINTS = 25
METHOD_POINTS = 15
VIDEO_POINTS = 10
GENDER_POINTS = 10
LANGUAGE_POINTS = 10
# PTV 11 "zeitnah erforderlich": a first appointment within 4 weeks of the form's date.
DEADLINE_DAYS = 28
# (at most this many days left, points): the last step reached counts; <= 0 is overdue.
DEADLINE_STEPS = ((14, 10), (7, 25), (0, 40))
NO_DEADLINE = dt.date(9999, 12, 31)  # sorts after every real deadline
# (upper limit in km, points): the first band the distance falls into.
DISTANCE_POINTS = ((5, 15), (10, 10), (20, 5))

OVERLAP_LOOKBACK = dt.timedelta(days=1)  # no session is longer than a day


@dataclass(frozen=True)
class Reason:
    """One part of the score: a German msgid with %-placeholders, its params and the points."""

    msgid: str
    points: int
    params: dict = field(default_factory=dict)
    clinical: bool = False  # derived from the intake: never shown to the secretariat

    def __iter__(self):  # unpacks like the (msgid, value) pair of the contract
        yield self.msgid
        yield self.params


@dataclass(frozen=True)
class Candidate:
    patient_id: int
    score: int
    reasons: list[Reason]
    on_practice_list: bool  # False: a pool patient (shown pseudonymously until they accept)
    waiting_since: dt.datetime
    distance_km: float | None
    deadline: dt.date | None = None  # the PTV 11 target of an urgent patient


@dataclass(frozen=True)
class Facts:
    """What the score looks at, one row per candidate."""

    patient_id: int
    added_at: dt.datetime
    on_list: bool
    priority: int
    via_link: bool
    urgent: bool
    problems_mask: int
    methods_mask: int
    video_pref: str
    lat: float | None
    lon: float | None
    ptv11_date: dt.date | None = None
    gender_wish: str = "any"
    gender_only: bool = True
    languages_mask: int = 0
    languages_only: bool = True

    @property
    def deadline(self) -> dt.date | None:
        """The PTV 11 target date of an urgent patient (None: none runs)."""
        return deadline_of(self.urgent, self.ptv11_date)


@dataclass(frozen=True)
class Context:
    """The slot as the matcher sees it (plain values, so scoring stays pure)."""

    slot_id: int
    practice_id: int
    now: dt.datetime
    start_at: dt.datetime
    end_at: dt.datetime
    weekday: int
    start_min: int
    end_min: int
    day: dt.date
    today: dt.date
    video: bool
    pool: bool  # the practice takes pool patients and has coordinates
    lat: float | None
    lon: float | None
    km_per_lon: float
    therapist_gender: str
    exclusions_mask: int
    specialties_mask: int
    methods_mask: int
    languages_mask: int
    insurances_mask: int
    populations_mask: int
    overlapping_slot_ids: tuple[int, ...]
    reposted_chain_ids: tuple[int, ...]
    reach_values: tuple[int, ...] = ()
    accessible: bool = False  # in person in an accessible room (video needs no room)
    sqlite: bool = False  # the engine, for one planner hint (see _branches)
    kind: str | None = None  # the slot's kind (filters.GROUP_KIND for a group)
    offers_in_person: bool = True
    offers_video: bool = True

    def target(self) -> filters.Target:
        """The slot as the hard filters see it."""
        return filters.Target(
            today=self.today,
            day=self.day,
            therapist_gender=self.therapist_gender,
            exclusions_mask=self.exclusions_mask,
            methods_mask=self.methods_mask,
            languages_mask=self.languages_mask,
            insurances_mask=self.insurances_mask,
            populations_mask=self.populations_mask,
            offers_in_person=self.offers_in_person,
            offers_video=self.offers_video,
            kind=self.kind,
            video=self.video,
            weekday=self.weekday,
            start_min=self.start_min,
            end_min=self.end_min,
            accessible=self.accessible,
        )


# --- context ---------------------------------------------------------------------------------


def _overlapping_slot_ids(session: Session, slot: Slot) -> tuple[int, ...]:
    """Offering slots (this one included) whose time overlaps this slot's."""
    rows = session.execute(
        select(Slot.id, Slot.start_at, Slot.minutes).where(
            Slot.status == SlotStatus.OFFERING,
            Slot.start_at < slot.end_at,
            Slot.start_at > slot.start_at - OVERLAP_LOOKBACK,
        )
    ).all()
    ids = {slot.id} if slot.id is not None else set()
    for row_id, start, minutes in rows:
        if start + dt.timedelta(minutes=minutes) > slot.start_at:
            ids.add(row_id)
    return tuple(sorted(ids))


def _reposted_chain(session: Session, slot: Slot) -> tuple[int, ...]:
    ids: list[int] = []
    current = slot.reposted_from_id
    while current is not None and current not in ids and len(ids) < 50:
        ids.append(current)
        current = session.scalar(select(Slot.reposted_from_id).where(Slot.id == current))
    return tuple(ids)


def _room_accessible(session: Session, slot: Slot) -> bool:
    if slot.room_id is None:
        return False
    room = session.get(Room, slot.room_id)
    return bool(room is not None and room.accessible)


def build_context(
    session: Session, slot: Slot, now: dt.datetime, *, ranking: bool = True
) -> Context:
    """The slot as the matcher sees it. `ranking=False` (one patient's fit, ``patient_fits``)
    skips what only ranking the pool needs: the overlapping slots' offers, the re-post chain,
    the radii in use."""
    practice: Practice = slot.practice or session.get(Practice, slot.practice_id)
    therapist: Therapist = slot.therapist or session.get(Therapist, slot.therapist_id)
    local = slot.start_at.astimezone(BERLIN)
    start_min = local.hour * 60 + local.minute
    has_coords = practice.lat is not None and practice.lon is not None
    pool = bool(practice.accepts_pool and has_coords)
    return Context(
        slot_id=slot.id,
        practice_id=practice.id,
        now=now,
        start_at=slot.start_at,
        end_at=slot.end_at,
        weekday=local.weekday(),
        start_min=start_min,
        end_min=start_min + slot.minutes,
        day=local.date(),
        today=now.astimezone(BERLIN).date(),
        video=slot.modality == Modality.VIDEO,
        pool=pool,
        lat=practice.lat,
        lon=practice.lon,
        km_per_lon=KM_PER_DEGREE * math.cos(math.radians(practice.lat)) if has_coords else 0.0,
        therapist_gender=therapist.gender,
        exclusions_mask=therapist.exclusions_mask or 0,
        specialties_mask=therapist.specialties_mask or 0,
        methods_mask=therapist.methods_mask or 0,
        languages_mask=therapist.languages_mask or 0,
        insurances_mask=therapist.insurances_mask or 0,
        populations_mask=therapist.populations_mask or 0,
        overlapping_slot_ids=_overlapping_slot_ids(session, slot) if ranking else (),
        reposted_chain_ids=_reposted_chain(session, slot) if ranking else (),
        reach_values=reach_values(session) if pool and ranking else (),
        accessible=_room_accessible(session, slot),
        sqlite=session.get_bind().dialect.name == "sqlite",
        kind=str(slot.kind) if slot.kind is not None else None,
        offers_in_person=bool(therapist.offers_in_person),
        offers_video=bool(therapist.offers_video),
    )


# --- pure scoring ------------------------------------------------------------------------------


def deadline_of(urgent: bool, ptv11_date: dt.date | None) -> dt.date | None:
    """An urgent PTV 11 carries the 4-week target for a first appointment from its date."""
    if not urgent or ptv11_date is None:
        return None
    return ptv11_date + dt.timedelta(days=DEADLINE_DAYS)


def deadline_points(deadline: dt.date | None, today: dt.date) -> tuple[int, int | None]:
    """(points, days left) for a running deadline: the closer, the more (``DEADLINE_STEPS``)."""
    if deadline is None:
        return 0, None
    left = (deadline - today).days
    points = 0
    for days, step_points in DEADLINE_STEPS:
        if left <= days:
            points = step_points
    return points, left


def waiting_months(added_at: dt.datetime, now: dt.datetime) -> int:
    return max(0, min((now - added_at).days // WAIT_MONTH_DAYS, WAIT_MAX_MONTHS))


def distance_sq(ctx: Context, lat: float | None, lon: float | None) -> float | None:
    """Squared equirectangular distance in km² (the SQL computes the very same expression)."""
    if lat is None or lon is None or ctx.lat is None or ctx.lon is None:
        return None
    dy = (lat - ctx.lat) * KM_PER_DEGREE
    dx = (lon - ctx.lon) * ctx.km_per_lon
    return dx * dx + dy * dy


def distance_points(d2: float | None) -> int:
    if d2 is None:
        return 0
    for limit, points in DISTANCE_POINTS:
        if d2 <= limit * limit:
            return points
    return 0


def score(facts: Facts, ctx: Context) -> tuple[int, list[Reason]]:
    """The soft score of one candidate and the reasons behind it (pure)."""
    reasons: list[Reason] = []
    months = waiting_months(facts.added_at, ctx.now)
    if months:
        reasons.append(
            Reason(N_("Wartet seit %(months)s Monat(en)"), months * WAIT_POINTS, {"months": months})
        )
    if facts.urgent:
        reasons.append(Reason(N_("Dringlich (PTV 11)"), URGENT_POINTS, clinical=True))
    points, left = deadline_points(facts.deadline, ctx.today)
    if points and left > 0:
        reasons.append(
            Reason(
                N_("Frist (4 Wochen ab PTV 11) endet in %(days)s Tag(en)"),
                points,
                {"days": left},
                clinical=True,
            )
        )
    elif points:
        reasons.append(
            Reason(
                N_("Frist (4 Wochen ab PTV 11) erreicht oder überschritten"), points, clinical=True
            )
        )
    priority = max(0, min(facts.priority, PRIORITY_MAX)) if facts.on_list else 0
    if priority:
        reasons.append(
            Reason(
                N_("Priorität der Praxis: %(level)s"),
                priority * PRIORITY_POINTS,
                {"level": priority},
            )
        )
    if facts.on_list and facts.via_link:
        reasons.append(Reason(N_("Über den Link der Praxis angemeldet"), LINK_POINTS))
    if facts.problems_mask & ctx.specialties_mask:
        reasons.append(Reason(N_("Passt zu einem Schwerpunkt"), SPECIALTY_POINTS, clinical=True))
    shared_methods = facts.methods_mask & ctx.methods_mask
    if shared_methods:
        labels = ", ".join(m.upper() for m in METHODS.from_mask(shared_methods))
        reasons.append(
            Reason(N_("Wunschverfahren: %(methods)s"), METHOD_POINTS, {"methods": labels})
        )
    d2 = distance_sq(ctx, facts.lat, facts.lon)
    points = distance_points(d2)
    if points:
        reasons.append(
            Reason(N_("Entfernung: etwa %(km)s km"), points, {"km": max(1, round(math.sqrt(d2)))})
        )
    if ctx.video and facts.video_pref == Preference.WANTED:
        reasons.append(Reason(N_("Wünscht Video"), VIDEO_POINTS))
    if facts.gender_wish != "any" and facts.gender_wish == ctx.therapist_gender:
        reasons.append(Reason(N_("Wunsch zum Geschlecht erfüllt"), GENDER_POINTS))
    if not facts.languages_only and facts.languages_mask & ctx.languages_mask:
        reasons.append(Reason(N_("Gemeinsame Sprache"), LANGUAGE_POINTS))
    return sum(r.points for r in reasons), reasons


# --- SQL -----------------------------------------------------------------------------------------


def _problems():
    return func.coalesce(PatientClinical.problems_mask, 0)


def _distance_sq_sql(ctx: Context, p=Patient):
    dy = (p.lat - ctx.lat) * KM_PER_DEGREE
    dx = (p.lon - ctx.lon) * ctx.km_per_lon
    return dx * dx + dy * dy


_REACH_VALUES = text("""
WITH RECURSIVE reach(v) AS (
    SELECT min(max_distance_km) FROM patients WHERE status = 'active'
    UNION ALL
    SELECT (SELECT min(p.max_distance_km) FROM patients p
            WHERE p.status = 'active' AND p.max_distance_km > reach.v)
    FROM reach WHERE reach.v IS NOT NULL
)
SELECT v FROM reach WHERE v IS NOT NULL
""")


def reach_values(session: Session) -> tuple[int, ...]:
    """The distinct radii active patients chose: one index seek each (a loose index scan on
    (status, max_distance_km, ...)), not a scan of the pool."""
    return tuple(session.scalars(_REACH_VALUES))


def _reach_arms(ctx: Context, p) -> list:
    """The practice lies within the patient's own radius (or the patient has no coordinates),
    for the matchable patients of the pool: a list of conditions, one per arm.

    One arm per radius patients chose: ``max_distance_km = r AND`` a lat/lon box of exactly r
    — on the index ``ix_patients_match`` (in_pool, matchable, max_distance_km, lat, lon, …)
    one seek and a short range each, instead of one box as wide as the widest radius in the
    whole pool. With very many distinct radii they are grouped into bands (IN list, box of
    the band's widest). The exact (equirectangular) test follows on the rows inside.
    """
    lead = (p.in_pool == true(), p.matchable == true())
    exact = _distance_sq_sql(ctx, p) <= p.max_distance_km * p.max_distance_km
    if len(ctx.reach_values) <= MAX_REACH_ARMS:
        groups = [((v,), v) for v in ctx.reach_values]
    else:
        groups, low = [], 0
        for high in REACH_BANDS_KM:
            values = tuple(v for v in ctx.reach_values if low < v <= high)
            if values:
                groups.append((values, high))
            low = high
        beyond = tuple(v for v in ctx.reach_values if v > low)
        if beyond:
            groups.append((beyond, max(beyond)))
    arms = []
    for values, radius in groups:
        box_lat = radius / KM_PER_DEGREE
        box_lon = radius / max(ctx.km_per_lon, 1.0)
        arms.append(
            and_(
                *lead,
                p.max_distance_km == values[0]
                if len(values) == 1
                else p.max_distance_km.in_(values),
                p.lat.between(ctx.lat - box_lat, ctx.lat + box_lat),
                p.lon.between(ctx.lon - box_lon, ctx.lon + box_lon),
                exact,
            )
        )
    arms.append(and_(*lead, p.lat.is_(None)))  # no coordinates: no distance test (see geo)
    return arms


# The patients of the reach arms (one alias for every statement: building a new one per call
# costs more than the rest of the query).
_REACH = aliased(Patient, name="reach")
_OWN = aliased(WaitlistEntry, name="own")  # the practice's own entry of a pool patient


def _pool_ids(ctx: Context, row_conditions):
    """The ids of the pool patients in reach who pass every condition of
    `row_conditions(ctx, entity)` (conditions on the patient row only): one SELECT per reach
    arm, each answered inside ``ix_patients_match`` (SQLite: a covering index; PostgreSQL: an
    index-only scan), so the rows of the box that fail a filter are never read from the
    table."""
    row = row_conditions(ctx, _REACH)
    arms = [select(_REACH.id).where(arm, *row) for arm in _reach_arms(ctx, _REACH)]
    return arms[0] if len(arms) == 1 else union_all(*arms)


def _row_conditions(ctx: Context, p=Patient) -> list:
    """The hard filters that read only the patient row, on `p` (``Patient`` or an alias)."""
    return filters.conditions(ctx.target(), entity=p, on_row=True)


def _common_conditions(ctx: Context) -> list:
    """Every hard filter except "which list" (see the module docstring)."""
    return [*_row_conditions(ctx), *_other_conditions(ctx)]


def _other_conditions(ctx: Context) -> list:
    """The hard filters that need another table: the exclusions (the intake) and the
    offer-state rules."""
    conds = filters.conditions(ctx.target(), on_row=False)
    # A group's context (ptmatch.domain.groups) has no slot: its own filter replaces this one.
    busy = [Offer.slot_id == ctx.slot_id] if ctx.slot_id is not None else []
    if ctx.overlapping_slot_ids:
        busy.append(
            and_(
                Offer.slot_id.in_(ctx.overlapping_slot_ids),
                Offer.status == OfferStatus.PENDING,
                Offer.expires_at > ctx.now,
            )
        )
    if ctx.reposted_chain_ids:
        busy.append(
            and_(
                Offer.slot_id.in_(ctx.reposted_chain_ids),
                Offer.status.in_([OfferStatus.ACCEPTED, OfferStatus.DECLINED]),
            )
        )
    if busy:
        conds.append(~select(Offer.id).where(Offer.patient_id == Patient.id, or_(*busy)).exists())
    return conds


def _score_sql(ctx: Context, *, on_list: bool, shared: list | None = None):
    """The score of ``score()`` as a SQL expression (same constants and thresholds).
    `shared`: the parts both branches have, from ``_shared_score_parts`` (built once)."""
    parts = list(shared if shared is not None else _shared_score_parts(ctx))
    if on_list:
        parts.append(
            case(
                *[
                    (WaitlistEntry.priority >= level, level * PRIORITY_POINTS)
                    for level in range(PRIORITY_MAX, 0, -1)
                ],
                else_=0,
            )
        )
        parts.append(case((WaitlistEntry.via_practice_link.is_(True), LINK_POINTS), else_=0))
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def _shared_score_parts(ctx: Context) -> list:
    """The parts of the SQL score that do not depend on the list (see ``_score_sql``)."""
    added = WaitlistEntry.added_at
    waiting = case(
        *[
            (added <= ctx.now - dt.timedelta(days=WAIT_MONTH_DAYS * m), m * WAIT_POINTS)
            for m in range(WAIT_MAX_MONTHS, 0, -1)
        ],
        else_=0,
    )
    parts = [waiting, case((PatientClinical.urgent.is_(True), URGENT_POINTS), else_=0)]
    # Deadline steps: days left <= k  <=>  ptv11_date <= today + k - DEADLINE_DAYS.
    parts.append(
        case(
            *[
                (
                    and_(
                        PatientClinical.urgent.is_(True),
                        Patient.ptv11_date <= ctx.today + dt.timedelta(days=days - DEADLINE_DAYS),
                    ),
                    points,
                )
                for days, points in reversed(DEADLINE_STEPS)
            ],
            else_=0,
        )
    )
    if ctx.therapist_gender != "any":
        parts.append(
            case((Patient.therapist_gender_wish == ctx.therapist_gender, GENDER_POINTS), else_=0)
        )
    if ctx.languages_mask:
        parts.append(
            case(
                (
                    and_(
                        Patient.languages_only.is_(False),
                        Patient.languages_mask.bitwise_and(ctx.languages_mask) != 0,
                    ),
                    LANGUAGE_POINTS,
                ),
                else_=0,
            )
        )
    if ctx.specialties_mask:
        parts.append(
            case((_problems().bitwise_and(ctx.specialties_mask) != 0, SPECIALTY_POINTS), else_=0)
        )
    if ctx.methods_mask:
        parts.append(
            case((Patient.methods_mask.bitwise_and(ctx.methods_mask) != 0, METHOD_POINTS), else_=0)
        )
    if ctx.lat is not None and ctx.lon is not None:
        d2 = _distance_sq_sql(ctx)
        parts.append(
            case(
                (Patient.lat.is_(None), 0),
                (Patient.lon.is_(None), 0),
                *[(d2 <= limit * limit, points) for limit, points in DISTANCE_POINTS],
                else_=0,
            )
        )
    if ctx.video:
        parts.append(case((Patient.video_pref == Preference.WANTED, VIDEO_POINTS), else_=0))
    return parts


def deadline_key():
    """The PTV 11 form date of an urgent patient (its deadline orders alike), else far away."""
    return case(
        (
            and_(PatientClinical.urgent.is_(True), Patient.ptv11_date.is_not(None)),
            Patient.ptv11_date,
        ),
        else_=literal(NO_DEADLINE),
    )


def _branches(ctx: Context, *, with_facts: bool, only_ids=None, conditions=None) -> list:
    """One SELECT per source: the practice's own list, and the pool (disjoint).
    `conditions(ctx, entity)`: conditions on the patient row only (default: the hard filters
    that read only the row, plus the others; `why_nobody` uses fewer)."""
    others = _other_conditions(ctx) if conditions is None else []
    conditions = conditions or _row_conditions
    shared = _shared_score_parts(ctx) if with_facts else None

    def columns(on_list: bool):
        if not with_facts:
            return [Patient.id.label("patient_id")]
        return [
            Patient.id.label("patient_id"),
            WaitlistEntry.added_at.label("added_at"),
            literal(on_list).label("on_list"),
            (WaitlistEntry.priority if on_list else literal(0)).label("priority"),
            (WaitlistEntry.via_practice_link if on_list else false()).label("via_link"),
            func.coalesce(PatientClinical.urgent, false()).label("urgent"),
            _problems().label("problems_mask"),
            Patient.methods_mask.label("methods_mask"),
            Patient.video_pref.label("video_pref"),
            Patient.lat.label("lat"),
            Patient.lon.label("lon"),
            Patient.ptv11_date.label("ptv11_date"),
            Patient.therapist_gender_wish.label("gender_wish"),
            Patient.gender_only.label("gender_only"),
            Patient.languages_mask.label("languages_mask"),
            Patient.languages_only.label("languages_only"),
            _score_sql(ctx, on_list=on_list, shared=shared).label("score"),
            deadline_key().label("deadline_key"),
        ]

    def base(query, on_list: bool, conds: list):
        query = query.outerjoin(PatientClinical, PatientClinical.patient_id == Patient.id).where(
            *conds
        )
        if only_ids is not None:
            query = query.where(Patient.id.in_(list(only_ids) or [-1]))
        return query

    own_list = (
        select(*columns(True))
        .select_from(WaitlistEntry)
        .join(Patient, Patient.id == WaitlistEntry.patient_id)
        .where(
            WaitlistEntry.practice_id == ctx.practice_id,
            WaitlistEntry.status == EntryStatus.ACTIVE,
        )
    )
    branches = [base(own_list, True, [*conditions(ctx, Patient), *others])]
    if ctx.pool:
        own = _OWN
        on_own_list = (
            select(own.id)
            .where(
                own.patient_id == Patient.id,
                own.practice_id == ctx.practice_id,
                own.status == EntryStatus.ACTIVE,
            )
            .exists()
        )
        # Driven by the ids the covering index finds; the rest (the pool entry's date, the
        # intake, the offers) is read for those only.
        pool = (
            select(*columns(False))
            .select_from(Patient)
            .join(
                WaitlistEntry,
                and_(
                    WaitlistEntry.patient_id == Patient.id,
                    WaitlistEntry.practice_id.is_(None),
                    WaitlistEntry.status == EntryStatus.ACTIVE,
                ),
            )
            .where(Patient.id.in_(_pool_ids(ctx, conditions)), ~on_own_list)
        )
        branches.append(base(pool, False, others))
    return branches


WEEKDAYS_ADVERB = (
    N_("montags"),
    N_("dienstags"),
    N_("mittwochs"),
    N_("donnerstags"),
    N_("freitags"),
    N_("samstags"),
    N_("sonntags"),
)


def _waiting(ctx: Context, p=Patient) -> list:
    """Waiting and reachable at all: active, not paused (the lists and the pool's reach)."""
    return [
        p.status == PatientStatus.ACTIVE,
        or_(p.paused_until.is_(None), p.paused_until <= ctx.today),
    ]


def _free_that_day(ctx: Context, p=Patient) -> list:
    return [*_waiting(ctx, p), filters.avail_column(ctx.weekday, p) != 0]


def _free_then(ctx: Context, p=Patient) -> list:
    return [
        *_waiting(ctx, p),
        filters.availability_condition(ctx.weekday, ctx.start_min, ctx.end_min, p),
    ]


def why_nobody(session: Session, slot: Slot, now: dt.datetime) -> list[Reason]:
    """Why a slot finds no candidate, for the therapist, with what to change: the first of
    "nobody waits", "nobody can on that weekday", "nobody can at that hour", "those who can
    do not fit the slot" that holds. Counts only (no patient is named)."""
    ctx = build_context(session, slot, now)

    def count(conditions) -> int:
        branches = _branches(ctx, with_facts=False, conditions=conditions)
        union = branches[0] if len(branches) == 1 else union_all(*branches)
        return session.scalar(select(func.count()).select_from(union.subquery())) or 0

    day = {"weekday": WEEKDAYS_ADVERB[ctx.weekday]}
    if count(_waiting) == 0:
        return [
            Reason(N_("Auf Ihrer Warteliste und im Pool in Ihrer Reichweite wartet niemand."), 0),
            Reason(
                N_(
                    "Nehmen Sie Pool-Patient:innen an (Praxisprofil) oder teilen Sie den "
                    "Registrierungslink Ihrer Praxis."
                ),
                0,
            ),
        ]
    if count(_free_that_day) == 0:
        return [
            Reason(N_("Niemand auf Ihren Listen oder in Reichweite hat %(weekday)s Zeit."), 0, day),
            Reason(N_("Wählen Sie einen anderen Tag."), 0),
        ]
    if count(_free_then) == 0:
        return [
            Reason(
                N_(
                    "Niemand auf Ihren Listen oder in Reichweite hat %(weekday)s "
                    "zu dieser Uhrzeit Zeit."
                ),
                0,
                day,
            ),
            Reason(N_("Wählen Sie eine andere Uhrzeit an diesem Tag."), 0),
        ]
    return [
        Reason(
            N_(
                "Wer zu dieser Zeit kann, passt nicht zum Termin (Form, Sprache, Versicherung, "
                "Altersgruppe, Ausschlüsse) oder hat für diese Zeit schon ein Angebot."
            ),
            0,
        ),
        Reason(N_("Prüfen Sie Form und Art des Termins oder Ihr Profil."), 0),
    ]


def candidate_ids_query(
    session: Session, slot: Slot, now: dt.datetime, *, context: Context | None = None
):
    """The bare SQL prefilter (hard filters only, no score): a SELECT of patient ids."""
    ctx = context or build_context(session, slot, now)
    branches = _branches(ctx, with_facts=False)
    return branches[0] if len(branches) == 1 else union_all(*branches)


def prefilter(session: Session, slot: Slot, now: dt.datetime) -> list[int]:
    """Ids of every patient who passes the hard filters for this slot (no order)."""
    return list(session.scalars(candidate_ids_query(session, slot, now)))


def patient_fits(session: Session, ctx: Context, patient_id: int, extra=()) -> bool:
    """One patient against every hard filter but "which list" (self-enrolment into a group:
    no list needed): the conditions of ``_common_conditions`` plus `extra`, and in person the
    practice within the patient's own radius (no coordinates on either side: no distance test)."""
    row = session.execute(
        select(Patient.lat, Patient.lon, Patient.max_distance_km)
        .select_from(Patient)
        .outerjoin(PatientClinical, PatientClinical.patient_id == Patient.id)
        .where(Patient.id == patient_id, *_common_conditions(ctx), *extra)
    ).first()
    if row is None:
        return False
    if ctx.video:
        return True
    d2 = distance_sq(ctx, row.lat, row.lon)
    return d2 is None or d2 <= (row.max_distance_km or 0) ** 2


def rank_candidates(
    session: Session, slot: Slot, now: dt.datetime, limit: int | None = None, *, only_ids=None
) -> list[Candidate]:
    """Candidates for a slot, best first, with score and reasons.

    The database filters, scores and orders; only the `limit` best rows come back.
    `only_ids` restricts the ranking to these patients (hand-picked offers re-check them).
    """
    return rank_context(session, build_context(session, slot, now), limit, only_ids=only_ids)


def rank_context(
    session: Session, ctx: Context, limit: int | None = None, *, only_ids=None, extra=()
) -> list[Candidate]:
    """`rank_candidates` for any Context (a group builds its own from a probe slot), with
    `extra` hard filters (SQL conditions on Patient / PatientClinical) added to every branch."""
    branches = [
        branch.where(*extra) if extra else branch
        for branch in _branches(ctx, with_facts=True, only_ids=only_ids)
    ]
    union = (branches[0] if len(branches) == 1 else union_all(*branches)).subquery("candidates")
    query = select(union).order_by(
        union.c.score.desc(), union.c.deadline_key, union.c.added_at, union.c.patient_id
    )
    if limit is not None:
        query = query.limit(limit)
    result = []
    for row in session.execute(query):
        facts = Facts(
            patient_id=row.patient_id,
            added_at=row.added_at,
            on_list=bool(row.on_list),
            priority=row.priority or 0,
            via_link=bool(row.via_link),
            urgent=bool(row.urgent),
            problems_mask=row.problems_mask or 0,
            methods_mask=row.methods_mask or 0,
            video_pref=str(row.video_pref),
            lat=row.lat,
            lon=row.lon,
            ptv11_date=row.ptv11_date,
            gender_wish=row.gender_wish,
            gender_only=bool(row.gender_only),
            languages_mask=row.languages_mask or 0,
            languages_only=bool(row.languages_only),
        )
        total, reasons = score(facts, ctx)
        d2 = distance_sq(ctx, facts.lat, facts.lon)
        result.append(
            Candidate(
                patient_id=facts.patient_id,
                score=total,
                reasons=reasons,
                on_practice_list=facts.on_list,
                waiting_since=facts.added_at,
                distance_km=math.sqrt(d2) if d2 is not None else None,
                deadline=facts.deadline,
            )
        )
    # The SQL order and the Python score agree (tested); sorting again keeps it total even so.
    result.sort(key=lambda c: (-c.score, c.deadline or NO_DEADLINE, c.waiting_since, c.patient_id))
    return result
