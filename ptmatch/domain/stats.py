"""Outcome figures for a period and a scope: the one source of truth for the dashboards, the
monthly report and the simulator.

Everything is derived from what ptmatch already records (slots, offers, bookings, list
entries, audit events). ``compute`` takes the figure groups an actor may see
(``access.stats_figures``); a group not asked for is not computed. Counts below
``SMALL_COUNT`` are replaced by ``SMALL`` ("< 5") with ``suppress_small`` outside a
practice's own view, together with every rate, median or histogram bar resting on so few.

Definitions (also in docs/statistics.md):

- A slot belongs to the period it was *posted* in. Outcomes are exclusive: cancelled by the
  practice or patient (also after a booking), filled (booked; before start and before the
  offer deadline are checked on the booking time), unfilled, still offering.
  ``fill_rate_before_start`` = filled before start ÷ (posted − cancelled − still offering).
- Offers: those sent in the period; their state is read as of ``now`` (pending past the
  deadline counts as expired).
- Attendance: bookings whose appointment lies in the period, attended ÷ (attended + no-show).
- Time to care: patients whose first slot offer (first booking) in the scope falls in the
  period, measured from the start of their wait (``wait_start``: the PTV 11 date where the
  patient has one, else registration), in days; split urgent / not urgent.
- Lists: entries on a list at the end of the period, by the patient's state now; booked and
  purged entries are those removed for that reason in the period.
- Places: bookings not cancelled whose appointment lies in the period, by slot kind, plus
  group seats of groups starting in the period.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from ptmatch.models import (
    AuditEvent,
    Booking,
    BookingStatus,
    EnrollmentStatus,
    GroupEnrollment,
    GroupProgram,
    Offer,
    OfferStatus,
    Patient,
    PatientClinical,
    PatientStatus,
    Practice,
    RemovalReason,
    Slot,
    SlotStatus,
    WaitlistEntry,
)

BERLIN = ZoneInfo("Europe/Berlin")
SMALL_COUNT = 5
SMALL = "< 5"
FOUR_WEEKS_DAYS = 28
# Histogram bars in weeks: [lower, upper) ; the last is open.
WEEK_BUCKETS: tuple[tuple[int, int | None], ...] = (
    (0, 1),
    (1, 2),
    (2, 4),
    (4, 8),
    (8, 12),
    (12, 26),
    (26, None),
)
CHECKIN_ACTIONS = {
    "patient.checkin_sent": "sent",
    "patient.checkin_confirmed": "confirmed",
    "patient.checkin_paused": "paused_unanswered",
}
PLACE_BOOKINGS = (
    BookingStatus.CONFIRMED,
    BookingStatus.ATTENDED,
    BookingStatus.NO_SHOW,
    BookingStatus.RELEASED,
)


# --- period and scope ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A half-open span [start, end) in UTC."""

    start: dt.datetime
    end: dt.datetime

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        """A calendar month in Berlin time."""
        nxt = (year + month // 12, month % 12 + 1)
        return cls(_berlin(dt.date(year, month, 1)), _berlin(dt.date(*nxt, 1)))

    @classmethod
    def days(cls, first: dt.date, last: dt.date) -> Period:
        """From the first day to the last day inclusive, Berlin time."""
        return cls(_berlin(first), _berlin(last + dt.timedelta(days=1)))

    @classmethod
    def parse_month(cls, text: str) -> Period:
        """``YYYY-MM`` → that month; ValueError otherwise."""
        year, _sep, month = (text or "").strip().partition("-")
        if not (len(year) == 4 and year.isdigit() and month.isdigit() and 1 <= int(month) <= 12):
            raise ValueError("expected YYYY-MM")
        return cls.month(int(year), int(month))

    def previous(self) -> Period:
        """The period of the same length just before; a calendar month gives the month before."""
        first = self.start.astimezone(BERLIN)
        if first.day == 1 and first.hour == 0 and self == Period.month(first.year, first.month):
            year, month = (first.year, first.month - 1) if first.month > 1 else (first.year - 1, 12)
            return Period.month(year, month)
        return Period(self.start - (self.end - self.start), self.start)

    @property
    def first_day(self) -> dt.date:
        return self.start.astimezone(BERLIN).date()

    @property
    def last_day(self) -> dt.date:
        return (self.end.astimezone(BERLIN) - dt.timedelta(microseconds=1)).date()

    @property
    def days_long(self) -> float:
        return (self.end - self.start).total_seconds() / 86400


def _berlin(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=BERLIN).astimezone(dt.UTC)


@dataclass(frozen=True)
class Scope:
    """The region (no ids), one practice, or one therapist (of a practice)."""

    practice_id: int | None = None
    therapist_id: int | None = None

    @property
    def kind(self) -> str:
        if self.therapist_id is not None:
            return "therapist"
        return "region" if self.practice_id is None else "practice"


def _slot_scope(scope: Scope) -> list[ColumnElement[bool]]:
    where = []
    if scope.practice_id is not None:
        where.append(Slot.practice_id == scope.practice_id)
    if scope.therapist_id is not None:
        where.append(Slot.therapist_id == scope.therapist_id)
    return where


def _in(column, period: Period) -> ColumnElement[bool]:
    return and_(column >= period.start, column < period.end)


# --- the PTV 11 seam: where a wait starts, who is urgent ---------------------------------------


def wait_start(
    ptv11_date: dt.date | None, created_at: dt.datetime, first: dt.datetime | None = None
) -> dt.datetime:
    """Where a patient's wait is measured from: the PTV 11 form date (Berlin midnight) where
    there is one, else registration. A form dated after ``first`` (the first offer or booking
    measured) came out of that very appointment - the Sprechstunde hands it out, and the
    domain then dates it - so it cannot start that wait: registration does."""
    if ptv11_date is not None and (first is None or _berlin(ptv11_date) <= first):
        return _berlin(ptv11_date)
    return created_at


def urgent_flag():
    """The PTV 11 "zeitnah erforderlich" flag (outer-joined intake; missing = not urgent)."""
    return func.coalesce(PatientClinical.urgent, False)


# --- small helpers ------------------------------------------------------------------------------


def quantile(values: list[float], q: float) -> float | None:
    """Nearest-rank quantile (q in (0, 1]); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def bucket_labels() -> list[str]:
    return [f"{lo}–{hi}" if hi is not None else f"{lo}+" for lo, hi in WEEK_BUCKETS]


def week_histogram(days: list[float]) -> list[int]:
    """Counts per WEEK_BUCKETS bar for durations in days."""
    counts = [0] * len(WEEK_BUCKETS)
    for d in days:
        weeks = d / 7
        for i, (lo, hi) in enumerate(WEEK_BUCKETS):
            if weeks >= lo and (hi is None or weeks < hi):
                counts[i] += 1
                break
    return counts


def _days(later: dt.datetime, earlier: dt.datetime) -> float:
    return (later - earlier).total_seconds() / 86400


def _iso_week(moment: dt.datetime) -> str:
    year, week, _day = moment.astimezone(BERLIN).isocalendar()
    return f"{year}-W{week:02d}"


# --- the figures --------------------------------------------------------------------------------


def compute(
    session: Session,
    now: dt.datetime,
    period: Period,
    scope: Scope,
    figures: frozenset[str] | set[str],
) -> dict:
    """The figures of ``figures`` (groups from ``access.stats_figures``) for the period and
    scope, as a flat-ish dict of plain values (JSON-ready). Groups not asked for are absent."""
    out: dict = {
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "scope": scope.kind,
    }
    if "slots" in figures:
        out.update(_slot_figures(session, period, scope))
    if "offers" in figures:
        out.update(_offer_figures(session, now, period, scope))
    if "attendance" in figures:
        out.update(_attendance(session, period, scope))
    if "places" in figures:
        out.update(_places(session, period, scope))
    if "time_to_care" in figures and scope.therapist_id is None:
        out.update(_time_to_care(session, period, scope, split="urgency" in figures))
    if "lists" in figures and scope.therapist_id is None:
        out.update(_lists(session, now, period, scope))
    if "checkins" in figures and scope.therapist_id is None:
        out.update(_checkins(session, period, scope))
    return out


def _slot_figures(session: Session, period: Period, scope: Scope) -> dict:
    rows = session.execute(
        select(
            Slot.id,
            Slot.status,
            Slot.created_at,
            Slot.start_at,
            Slot.offer_deadline_at,
            Booking.created_at,
        )
        .outerjoin(Booking, Booking.slot_id == Slot.id)
        .where(_in(Slot.created_at, period), *_slot_scope(scope))
    ).all()
    counts = Counter()
    hours: list[float] = []
    weekly: dict[str, Counter] = defaultdict(Counter)
    for _id, status, created, start, deadline, booked_at in rows:
        week = weekly[_iso_week(created)]
        counts["posted"] += 1
        week["posted"] += 1
        if booked_at is not None:
            hours.append((booked_at - created).total_seconds() / 3600)
        if status == SlotStatus.CANCELLED:
            counts["cancelled"] += 1
            week["cancelled"] += 1
            if booked_at is not None:
                counts["cancelled_after_booking"] += 1
        elif status == SlotStatus.BOOKED:
            counts["filled"] += 1
            if booked_at is not None and booked_at < start:
                counts["filled_before_start"] += 1
                week["filled"] += 1
            if booked_at is not None and booked_at <= deadline:
                counts["filled_before_deadline"] += 1
        elif status == SlotStatus.UNFILLED:
            counts["unfilled"] += 1
        else:
            counts["open"] += 1
            week["open"] += 1
    decided = counts["posted"] - counts["cancelled"] - counts["open"]
    weeks = []
    for key in sorted(weekly):
        w = weekly[key]
        base = w["posted"] - w["cancelled"] - w["open"]
        weeks.append(
            {
                "week": key,
                "posted": w["posted"],
                "decided": base,
                "filled": w["filled"],
                "fill_rate": _share(w["filled"], base),
            }
        )
    return {
        "slots_posted": counts["posted"],
        "slots_filled": counts["filled"],
        "slots_filled_before_start": counts["filled_before_start"],
        "slots_filled_before_deadline": counts["filled_before_deadline"],
        "slots_unfilled": counts["unfilled"],
        "slots_cancelled": counts["cancelled"],
        "slots_cancelled_after_booking": counts["cancelled_after_booking"],
        "slots_open": counts["open"],
        "slots_decided": decided,
        "fill_rate_before_start": _share(counts["filled_before_start"], decided),
        "fill_rate_before_deadline": _share(counts["filled_before_deadline"], decided),
        "slots_booked": len(hours),
        "hours_to_booking_median": _round(quantile(hours, 0.5)),
        "hours_to_booking_p90": _round(quantile(hours, 0.9)),
        "weekly": weeks,
    }


def _offer_figures(session: Session, now: dt.datetime, period: Period, scope: Scope) -> dict:
    offers = session.scalars(
        select(Offer)
        .join(Slot, Slot.id == Offer.slot_id)
        .where(_in(Offer.sent_at, period), *_slot_scope(scope))
    ).all()
    states = Counter(offer.effective_status(now) for offer in offers)
    sent = len(offers)
    accepted = states[OfferStatus.ACCEPTED]
    out = {
        "offers_sent": sent,
        "offers_accepted": accepted,
        "offers_per_booking": round(sent / accepted, 2) if accepted else None,
    }
    for status in OfferStatus:
        out[f"share_offers_{status.value}"] = _share(states[status], sent)
    return out


def _attendance(session: Session, period: Period, scope: Scope) -> dict:
    rows = session.execute(
        select(Booking.status, func.count(Booking.id))
        .join(Slot, Slot.id == Booking.slot_id)
        .where(_in(Slot.start_at, period), *_slot_scope(scope))
        .group_by(Booking.status)
    ).all()
    by = {status: n for status, n in rows}
    attended = by.get(BookingStatus.ATTENDED, 0)
    no_show = by.get(BookingStatus.NO_SHOW, 0)
    return {
        "attended": attended,
        "no_show": no_show,
        "attendance_rate": _share(attended, attended + no_show),
    }


def _places(session: Session, period: Period, scope: Scope) -> dict:
    rows = session.execute(
        select(Slot.kind, func.count(Booking.id))
        .join(Slot, Slot.id == Booking.slot_id)
        .where(_in(Slot.start_at, period), Booking.status.in_(PLACE_BOOKINGS), *_slot_scope(scope))
        .group_by(Slot.kind)
    ).all()
    places = {str(kind): n for kind, n in rows}
    group_where = [_in(GroupProgram.first_session_at, period)]
    if scope.practice_id is not None:
        group_where.append(GroupProgram.practice_id == scope.practice_id)
    if scope.therapist_id is not None:
        group_where.append(GroupProgram.therapist_id == scope.therapist_id)
    seats = session.scalar(
        select(func.count(GroupEnrollment.id))
        .join(GroupProgram, GroupProgram.id == GroupEnrollment.group_id)
        .where(GroupEnrollment.status == EnrollmentStatus.ENROLLED, *group_where)
    )
    places["group_seat"] = seats or 0
    total = sum(places.values())
    return {
        "places": places,
        "places_total": total,
        "places_per_year": round(total * 365 / period.days_long, 1) if period.days_long else None,
    }


def _first_times(session: Session, period: Period, scope: Scope, column, table) -> list[tuple]:
    """(patient id, first time, wait start, urgent) for patients whose first ``column`` (of
    slot offers or bookings in the scope) falls in the period."""
    slot_key = Offer.slot_id if table is Offer else Booking.slot_id
    firsts = (
        select(table.patient_id.label("pid"), func.min(column).label("first"))
        .join(Slot, Slot.id == slot_key)
        .where(*_slot_scope(scope))
        .group_by(table.patient_id)
        .subquery()
    )
    rows = session.execute(
        select(firsts.c.pid, firsts.c.first, Patient.ptv11_date, Patient.created_at, urgent_flag())
        .join(Patient, Patient.id == firsts.c.pid)
        .outerjoin(PatientClinical, PatientClinical.patient_id == Patient.id)
        .where(_in(firsts.c.first, period))
    ).all()
    return [
        (pid, first, wait_start(ptv11, created, first), urgent)
        for pid, first, ptv11, created, urgent in rows
    ]


def _durations(rows: list[tuple], prefix: str) -> dict:
    days = [max(0.0, _days(first, start)) for _pid, first, start, _urgent in rows]
    return {
        f"patients_{prefix}": len(days),
        f"days_to_{prefix}_median": _round(quantile(days, 0.5)),
        f"days_to_{prefix}_p90": _round(quantile(days, 0.9)),
        f"patients_{prefix}_within_4_weeks": sum(1 for d in days if d <= FOUR_WEEKS_DAYS),
        f"share_{prefix}_within_4_weeks": _share(
            sum(1 for d in days if d <= FOUR_WEEKS_DAYS), len(days)
        ),
        f"{prefix}_histogram": week_histogram(days),
    }


def _time_to_care(session: Session, period: Period, scope: Scope, *, split: bool) -> dict:
    out: dict = {}
    for prefix, table, column in (
        ("first_offer", Offer, Offer.sent_at),
        ("first_appointment", Booking, Booking.created_at),
    ):
        rows = _first_times(session, period, scope, column, table)
        out.update(_durations(rows, prefix))
        if split:
            for name, flag in (("urgent", True), ("not_urgent", False)):
                part = [r for r in rows if bool(r[3]) == flag]
                out.setdefault(name, {}).update(_durations(part, prefix))
    return out


def _lists(session: Session, now: dt.datetime, period: Period, scope: Scope) -> dict:
    end = min(period.end, now)
    where = []
    if scope.practice_id is not None:
        where.append(WaitlistEntry.practice_id == scope.practice_id)
    on_list = and_(
        WaitlistEntry.added_at < period.end,
        or_(WaitlistEntry.removed_at.is_(None), WaitlistEntry.removed_at >= period.end),
    )
    rows = session.execute(
        select(WaitlistEntry.practice_id, WaitlistEntry.added_at, Patient.status)
        .join(Patient, Patient.id == WaitlistEntry.patient_id)
        .where(on_list, *where)
    ).all()
    counts = Counter()
    waits: list[float] = []
    per_practice: dict[int | None, list[float]] = defaultdict(list)
    for practice_id, added, status in rows:
        if status == PatientStatus.ACTIVE:
            counts["active"] += 1
            wait = max(0.0, _days(end, added))
            waits.append(wait)
            per_practice[practice_id].append(wait)
        elif status == PatientStatus.PAUSED:
            counts["paused"] += 1
        elif status == PatientStatus.BOOKED:
            counts["booked"] += 1
    removed = session.execute(
        select(WaitlistEntry.removed_reason, func.count(WaitlistEntry.id))
        .where(
            _in(WaitlistEntry.removed_at, period),
            WaitlistEntry.removed_reason.in_(
                [RemovalReason.BOOKED_ELSEWHERE, RemovalReason.PURGED]
            ),
            *where,
        )
        .group_by(WaitlistEntry.removed_reason)
    ).all()
    by_reason = {reason: n for reason, n in removed}
    counts["booked"] += by_reason.get(RemovalReason.BOOKED_ELSEWHERE, 0)
    counts["purged"] += by_reason.get(RemovalReason.PURGED, 0)
    out = {
        "entries_active": counts["active"],
        "entries_paused": counts["paused"],
        "entries_booked": counts["booked"],
        "entries_purged": counts["purged"],
        "waiting_histogram": week_histogram(waits),
        "waiting_days_median": _round(quantile(waits, 0.5)),
        "waiting_days_p90": _round(quantile(waits, 0.9)),
    }
    if scope.practice_id is None:
        names = dict(session.execute(select(Practice.id, Practice.name)).all())
        out["waiting_by_practice"] = [
            {
                "practice": names.get(pid, "") if pid is not None else None,
                "entries_active": len(values),
                "waiting_days_median": _round(quantile(values, 0.5)),
                "waiting_days_p90": _round(quantile(values, 0.9)),
            }
            for pid, values in sorted(
                per_practice.items(), key=lambda kv: (kv[0] is None, names.get(kv[0], ""))
            )
        ]
    return out


def _checkins(session: Session, period: Period, scope: Scope) -> dict:
    query = select(AuditEvent.action, func.count(AuditEvent.id)).where(
        _in(AuditEvent.at, period), AuditEvent.action.in_(list(CHECKIN_ACTIONS))
    )
    if scope.practice_id is not None:
        listed = select(WaitlistEntry.patient_id).where(
            WaitlistEntry.practice_id == scope.practice_id
        )
        query = query.where(AuditEvent.patient_id.in_(listed))
    rows = session.execute(query.group_by(AuditEvent.action)).all()
    by = {action: n for action, n in rows}
    return {f"checkins_{name}": by.get(action, 0) for action, name in CHECKIN_ACTIONS.items()}


# --- small-count suppression --------------------------------------------------------------------

# rate or statistic -> the count it rests on
_RESTS_ON = {
    "fill_rate_before_start": "slots_decided",
    "fill_rate_before_deadline": "slots_decided",
    "hours_to_booking_median": "slots_booked",
    "hours_to_booking_p90": "slots_booked",
    "offers_per_booking": "offers_accepted",
    "attendance_rate": "__attendance",
    "waiting_days_median": "entries_active",
    "waiting_days_p90": "entries_active",
    "fill_rate": "decided",  # a week's row
}
for _p in ("first_offer", "first_appointment"):
    _RESTS_ON[f"days_to_{_p}_median"] = f"patients_{_p}"
    _RESTS_ON[f"days_to_{_p}_p90"] = f"patients_{_p}"
    _RESTS_ON[f"share_{_p}_within_4_weeks"] = f"patients_{_p}"
for _s in OfferStatus:
    _RESTS_ON[f"share_offers_{_s.value}"] = "offers_sent"


def is_small(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < SMALL_COUNT


def suppress_small(figures: dict) -> dict:
    """A copy in which every count 1–4 is SMALL, and every rate, median or bar resting on
    fewer than 5 cases is SMALL too (a share of 1 out of 2 identifies as well as the count)."""
    return _suppress(figures)


def _suppress(figures: dict) -> dict:
    out: dict = {}
    base = dict(figures)
    if "attended" in base:
        base["__attendance"] = base["attended"] + base["no_show"]
    for key, value in figures.items():
        if key in _RESTS_ON:
            n = base.get(_RESTS_ON[key])
            out[key] = SMALL if value is not None and isinstance(n, int) and n < 5 else value
        elif isinstance(value, dict) and key not in ("period",):
            out[key] = _suppress(value)
        elif isinstance(value, list):
            out[key] = [_suppress(v) if isinstance(v, dict) else _small(v) for v in value]
        else:
            out[key] = _small(value)
    return out


def _small(value):
    return SMALL if is_small(value) else value
