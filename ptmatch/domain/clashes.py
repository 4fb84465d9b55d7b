"""Does a new appointment fit the therapist's calendar? Buffers and modality switches included.

Two appointments clash when the gap between them is shorter than the therapist's buffer;
between video and in person the modality-switch buffer applies when it is longer (time to
travel to or from the practice, set up the room). Slots still being offered count as much
as booked ones. A therapy place is a weekly appointment from its first date on (Europe/
Berlin wall clock, so it keeps its local time across daylight-saving changes) while it is
offered or held; one-off appointments are compared with its occurrence in that week.

`find_clash` returns a human description of the first appointment in the way (German, like
every domain message), or None. Weekly group sessions (open or confirmed groups, a fixed
number of weeks) count like slots; calendar blocks only propose a modality
(``ptmatch.domain.calendar_rules``), they never refuse.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from ptmatch import labels, localtime
from ptmatch.models import (
    Booking,
    BookingStatus,
    GroupProgram,
    GroupStatus,
    Modality,
    Slot,
    SlotKind,
    SlotStatus,
    Therapist,
)

BERLIN = ZoneInfo("Europe/Berlin")
WEEK = dt.timedelta(days=7)
LOOKAROUND = dt.timedelta(days=1)  # a one-off session never lasts longer; buffers are minutes

# A therapy place stops recurring once its booking ended (released) or was cancelled.
_ENDED = (BookingStatus.CANCELLED, BookingStatus.RELEASED)


@dataclass(frozen=True)
class Appointment:
    start_at: dt.datetime
    minutes: int
    modality: Modality
    weekly: bool
    label: str = ""
    booked: bool = False
    count: int | None = None  # weekly: number of sessions (a group); None = open-ended

    def occurrences_near(self, anchor: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
        """[start, end) of the occurrences within about a week of `anchor` (UTC)."""
        if not self.weekly:
            return [(self.start_at, self.start_at + dt.timedelta(minutes=self.minutes))]
        weeks = max(0, (anchor - self.start_at) // WEEK)
        result = []
        for k in (weeks - 1, weeks, weeks + 1):
            if k < 0 or (self.count is not None and k >= self.count):
                continue
            start = localtime.same_time_weeks_later(self.start_at, k)  # same wall-clock time
            result.append((start, start + dt.timedelta(minutes=self.minutes)))
        return result


def required_gap(therapist: Therapist, a: Modality, b: Modality) -> dt.timedelta:
    minutes = therapist.buffer_minutes or 0
    if a != b:
        minutes = max(minutes, therapist.switch_buffer_minutes or 0)
    return dt.timedelta(minutes=minutes)


def clash_between(
    therapist: Therapist, new: Appointment, old: Appointment
) -> tuple[dt.datetime, dt.datetime] | None:
    """The occurrence of `old` that comes too close to `new`, or None."""
    gap = required_gap(therapist, new.modality, old.modality)
    anchor = max(new.start_at, old.start_at)
    for n_start, n_end in new.occurrences_near(anchor):
        for o_start, o_end in old.occurrences_near(anchor):
            if n_start < o_end + gap and o_start < n_end + gap:
                return o_start, o_end
    return None


def describe(
    kind: SlotKind, modality: Modality, start: dt.datetime, end: dt.datetime, booked: bool
) -> str:
    local_start, local_end = start.astimezone(BERLIN), end.astimezone(BERLIN)
    state = "gebucht" if booked else "angeboten"
    return (
        f"{labels.msgid(kind)} {labels.msgid(modality)} ({state}) am {local_start:%d.%m.%Y} "
        f"von {local_start:%H:%M} bis {local_end:%H:%M} Uhr"
    )


def find_clash(
    session: Session,
    therapist: Therapist,
    start_at: dt.datetime,
    minutes: int,
    modality: Modality,
    ignore_slot_id: int | None = None,
    *,
    weekly: bool = False,
    count: int | None = None,
    ignore_group_id: int | None = None,
) -> str | None:
    """A description of the therapist's appointment that clashes with the new one, or None.

    `weekly`: the new appointment is a therapy place (recurs every week from `start_at`).
    """
    modality = Modality(modality)
    new = Appointment(start_at, minutes, modality, weekly or count is not None, count=count)
    weekly = new.weekly
    longest_gap = dt.timedelta(
        minutes=max(therapist.buffer_minutes or 0, therapist.switch_buffer_minutes or 0)
    )
    near = (Slot.start_at > start_at - LOOKAROUND - longest_gap) & (
        Slot.start_at < start_at + dt.timedelta(minutes=minutes) + longest_gap
    )
    query = (
        select(Slot, Booking.status)
        .outerjoin(Booking, Booking.slot_id == Slot.id)
        .where(
            Slot.therapist_id == therapist.id,
            Slot.status.in_([SlotStatus.OFFERING, SlotStatus.BOOKED]),
        )
        .order_by(Slot.start_at, Slot.id)
    )
    if weekly:
        # A weekly place meets every later appointment on its weekday: look at all from now on.
        query = query.where(
            or_(
                Slot.start_at > start_at - LOOKAROUND - longest_gap,
                Slot.kind == SlotKind.THERAPY_PLACE,
            )
        )
    else:
        query = query.where(or_(near, Slot.kind == SlotKind.THERAPY_PLACE))
    if ignore_slot_id is not None:
        query = query.where(Slot.id != ignore_slot_id)
    for slot, booking_status in session.execute(query):
        if booking_status in _ENDED:
            continue
        old = Appointment(
            slot.start_at,
            slot.minutes,
            slot.modality,
            slot.kind == SlotKind.THERAPY_PLACE,
            booked=slot.status == SlotStatus.BOOKED,
        )
        hit = clash_between(therapist, new, old)
        if hit is not None:
            return describe(slot.kind, slot.modality, hit[0], hit[1], old.booked)
    return _group_clash(session, therapist, new, ignore_group_id)


GROUP_MAX_SESSIONS = 52  # ptmatch.domain.groups refuses longer programmes; bounds the query


def _group_clash(
    session: Session, therapist: Therapist, new: Appointment, ignore_group_id: int | None
) -> str | None:
    """Weekly sessions of the therapist's open or confirmed groups block the calendar too."""
    gap = dt.timedelta(
        minutes=max(therapist.buffer_minutes or 0, therapist.switch_buffer_minutes or 0)
    )
    query = (
        select(GroupProgram)
        .where(
            GroupProgram.therapist_id == therapist.id,
            GroupProgram.status.in_([GroupStatus.OPEN, GroupStatus.CONFIRMED]),
            GroupProgram.first_session_at > new.start_at - (GROUP_MAX_SESSIONS + 1) * WEEK,
        )
        .order_by(GroupProgram.first_session_at, GroupProgram.id)
    )
    if not new.weekly:
        query = query.where(
            GroupProgram.first_session_at < new.start_at + dt.timedelta(minutes=new.minutes) + gap
        )
    if ignore_group_id is not None:
        query = query.where(GroupProgram.id != ignore_group_id)
    for group in session.scalars(query):
        old = Appointment(
            group.first_session_at, group.minutes, group.modality, True, count=group.session_count
        )
        hit = clash_between(therapist, new, old)
        if hit is not None:
            local_start, local_end = hit[0].astimezone(BERLIN), hit[1].astimezone(BERLIN)
            return (
                f"Gruppe „{group.title}“ {labels.msgid(group.modality)} am {local_start:%d.%m.%Y} "
                f"von {local_start:%H:%M} bis {local_end:%H:%M} Uhr"
            )
    return None


# --- rooms --------------------------------------------------------------------------------------


def initials(name: str) -> str:
    """ "Dr. Anna Berg" → "A. B." (titles and empty parts skipped): all a room plan shows."""
    parts = [p for p in (name or "").replace(",", " ").split() if not p.endswith(".")]
    return " ".join(p[:1].upper() + "." for p in parts[:3]) or "?"


def therapist_initials(therapist: Therapist | None) -> str:
    user = therapist.user if therapist is not None else None
    return initials((user.display_name or user.email.split("@")[0]) if user else "")


def room_clash(
    session: Session,
    room_id: int,
    start_at: dt.datetime,
    minutes: int,
    gap_minutes: int,
    *,
    weekly: bool = False,
    count: int | None = None,
    ignore_slot_id: int | None = None,
    ignore_group_id: int | None = None,
) -> str | None:
    """Who holds the room when the new in-person appointment (plus `gap_minutes` of buffer
    on either side, and the other appointment's own therapist's buffer) would need it:
    "A. B., Sprechstunde 14:00–14:50" (the first in the way), or None when it is free.

    Offered and booked in-person slots in the room count, therapy places every week, and the
    weekly sessions of open or confirmed groups in the room."""
    new = Appointment(
        start_at, minutes, Modality.IN_PERSON, weekly or count is not None, count=count
    )
    reach = dt.timedelta(minutes=gap_minutes) + LOOKAROUND
    query = (
        select(Slot, Booking.status)
        .outerjoin(Booking, Booking.slot_id == Slot.id)
        .where(
            Slot.room_id == room_id,
            Slot.modality == Modality.IN_PERSON,
            Slot.status.in_([SlotStatus.OFFERING, SlotStatus.BOOKED]),
        )
        .order_by(Slot.start_at, Slot.id)
    )
    if new.weekly:
        query = query.where(
            or_(Slot.start_at > start_at - reach, Slot.kind == SlotKind.THERAPY_PLACE)
        )
    else:
        query = query.where(
            or_(
                and_(
                    Slot.start_at > start_at - reach,
                    Slot.start_at < start_at + dt.timedelta(minutes=minutes) + reach,
                ),
                Slot.kind == SlotKind.THERAPY_PLACE,
            )
        )
    if ignore_slot_id is not None:
        query = query.where(Slot.id != ignore_slot_id)
    for slot, booking_status in session.execute(query):
        if booking_status in _ENDED:
            continue
        old = Appointment(
            slot.start_at, slot.minutes, Modality.IN_PERSON, slot.kind == SlotKind.THERAPY_PLACE
        )
        other = slot.therapist.buffer_minutes if slot.therapist is not None else 0
        hit = _overlap(new, old, max(gap_minutes, other or 0))
        if hit is not None:
            return _room_line(therapist_initials(slot.therapist), labels.msgid(slot.kind), hit)
    groups = select(GroupProgram).where(
        GroupProgram.room_id == room_id,
        GroupProgram.modality == Modality.IN_PERSON,
        GroupProgram.status.in_([GroupStatus.OPEN, GroupStatus.CONFIRMED]),
        GroupProgram.first_session_at > start_at - (GROUP_MAX_SESSIONS + 1) * WEEK,
    )
    if not new.weekly:
        groups = groups.where(
            GroupProgram.first_session_at < start_at + dt.timedelta(minutes=minutes) + reach
        )
    if ignore_group_id is not None:
        groups = groups.where(GroupProgram.id != ignore_group_id)
    for group in session.scalars(groups.order_by(GroupProgram.first_session_at, GroupProgram.id)):
        old = Appointment(
            group.first_session_at,
            group.minutes,
            Modality.IN_PERSON,
            True,
            count=group.session_count,
        )
        other = group.therapist.buffer_minutes if group.therapist is not None else 0
        hit = _overlap(new, old, max(gap_minutes, other or 0))
        if hit is not None:
            return _room_line(therapist_initials(group.therapist), "Gruppe", hit)
    return None


def _overlap(
    new: Appointment, old: Appointment, gap_minutes: int
) -> tuple[dt.datetime, dt.datetime] | None:
    gap = dt.timedelta(minutes=gap_minutes)
    anchor = max(new.start_at, old.start_at)
    for n_start, n_end in new.occurrences_near(anchor):
        for o_start, o_end in old.occurrences_near(anchor):
            if n_start < o_end + gap and o_start < n_end + gap:
                return o_start, o_end
    return None


def _room_line(who: str, kind: str, hit: tuple[dt.datetime, dt.datetime]) -> str:
    start, end = hit[0].astimezone(BERLIN), hit[1].astimezone(BERLIN)
    return f"{who}, {kind} am {start:%d.%m.%Y} {start:%H:%M}–{end:%H:%M}"
