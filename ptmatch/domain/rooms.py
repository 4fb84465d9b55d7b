"""Rooms of a practice: which in-person appointment takes which room, and the day plan.

Several therapists of a practice share its rooms. An in-person slot or a weekly group
session needs a room that is free for its time plus buffers (the larger of the two
therapists' buffers: time to air and prepare the room); video needs none. Posting takes,
in this order: the room the caller names, the room of the therapist's calendar block at
that time, the therapist's default room, then the first free room of the practice (by
name). A group's room must hold its maximum. When no room is free the post is refused
with the appointment in the way named ("Raum 2 belegt durch A. B., …"). A practice
without rooms keeps working as before: nothing is checked.

On PostgreSQL the chosen room's row is locked (``FOR UPDATE``) before the check, so two
therapists posting into one room at once are serialised; SQLite serialises writers anyway.

The day plan per room shows the therapists' initials and the kind of appointment only:
the secretariat and every therapist of the practice may see it, and it names no patient.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from ptmatch import labels
from ptmatch.catalog import N_
from ptmatch.domain import audit
from ptmatch.domain.clashes import (
    Appointment,
    room_clash,
    therapist_initials,
)
from ptmatch.domain.errors import Clash, InvalidInput, NotAllowed, NotFound
from ptmatch.domain.practices import can_manage_practice
from ptmatch.models import (
    Booking,
    BookingStatus,
    CalendarBlock,
    GroupProgram,
    GroupStatus,
    Modality,
    Room,
    Slot,
    SlotKind,
    SlotStatus,
    Therapist,
    User,
)

BERLIN = ZoneInfo("Europe/Berlin")
NAME_MAX = 80
NOTE_MAX = 300
CAPACITY = (1, 40)
MAX_ROOMS = 30

# Shown with their parameters (the views translate the msgid, then fill it in).
MSG_BUSY = N_("Kein Raum frei: %(room)s belegt durch %(what)s")
MSG_TOO_SMALL = N_("Kein Raum der Praxis fasst %(n)s Personen.")


def list_rooms(session: Session, practice_id: int, *, active_only: bool = True) -> list[Room]:
    query = select(Room).where(Room.practice_id == practice_id)
    if active_only:
        query = query.where(Room.is_active.is_(True))
    return list(session.scalars(query.order_by(Room.name, Room.id)))


def get_room(session: Session, actor: User | None, room_id: int) -> Room:
    """A room of a practice the actor may manage; anything else is NotFound."""
    room = session.get(Room, room_id)
    if room is None or not can_manage_practice(session, actor, room.practice_id):
        raise NotFound(N_("Nicht gefunden."))
    return room


def _clean(name: str, capacity, accessible, note: str) -> tuple[str, int, bool, str]:
    name = (name or "").strip()
    if not name:
        raise InvalidInput(N_("Bitte ausfüllen."), "name")
    if len(name) > NAME_MAX:
        raise InvalidInput(N_("Höchstens 80 Zeichen."), "name")
    if (
        isinstance(capacity, bool)
        or not isinstance(capacity, int)
        or not CAPACITY[0] <= capacity <= CAPACITY[1]
    ):
        raise InvalidInput(N_("Erlaubt sind 1 bis 40 Personen."), "capacity")
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise InvalidInput(N_("Höchstens 300 Zeichen."), "note")
    return name, capacity, bool(accessible), note


def _name_taken(session: Session, practice_id: int, name: str, except_id: int | None) -> bool:
    query = select(Room.id).where(
        Room.practice_id == practice_id, func.lower(Room.name) == name.lower()
    )
    if except_id is not None:
        query = query.where(Room.id != except_id)
    return session.scalar(query) is not None


def add_room(
    session: Session,
    now: dt.datetime,
    actor: User | None,
    practice_id: int,
    *,
    name: str,
    capacity: int,
    accessible: bool = False,
    note: str = "",
) -> Room:
    """A new room of the practice (its therapists and the secretariat serving it)."""
    if not can_manage_practice(session, actor, practice_id):
        raise NotAllowed(N_("Sie dürfen diese Praxis nicht bearbeiten."))
    name, capacity, accessible, note = _clean(name, capacity, accessible, note)
    if len(list_rooms(session, practice_id, active_only=False)) >= MAX_ROOMS:
        raise InvalidInput(N_("Die Praxis hat bereits die größtmögliche Zahl an Räumen."))
    if _name_taken(session, practice_id, name, None):
        raise InvalidInput(N_("Einen Raum mit diesem Namen gibt es schon."), "name")
    room = Room(
        practice_id=practice_id, name=name, capacity=capacity, accessible=accessible, note=note
    )
    session.add(room)
    session.flush()
    audit.record(session, now, "room.added", actor, practice_id=practice_id, room_id=room.id)
    return room


def update_room(
    session: Session,
    now: dt.datetime,
    actor: User | None,
    room: Room,
    *,
    name: str,
    capacity: int,
    accessible: bool,
    note: str,
    is_active: bool = True,
) -> Room:
    if not can_manage_practice(session, actor, room.practice_id):
        raise NotAllowed(N_("Sie dürfen diese Praxis nicht bearbeiten."))
    name, capacity, accessible, note = _clean(name, capacity, accessible, note)
    if _name_taken(session, room.practice_id, name, room.id):
        raise InvalidInput(N_("Einen Raum mit diesem Namen gibt es schon."), "name")
    room.name, room.capacity, room.accessible, room.note = name, capacity, accessible, note
    room.is_active = bool(is_active)
    session.flush()
    audit.record(session, now, "room.changed", actor, practice_id=room.practice_id, room_id=room.id)
    return room


def set_default_room(
    session: Session, now: dt.datetime, actor: User | None, therapist: Therapist, room_id
) -> None:
    """The therapist's own default room (None: the first free one)."""
    if actor is None or actor.id != therapist.user_id:
        raise NotAllowed(N_("Sie dürfen nur Ihr eigenes Profil ändern."))
    if room_id is not None:
        room = session.get(Room, room_id)
        if room is None or room.practice_id != therapist.practice_id or not room.is_active:
            raise InvalidInput(N_("Bitte eine Angabe aus der Liste wählen."), "room")
    therapist.default_room_id = room_id
    session.flush()
    audit.record(
        session,
        now,
        "room.default_set",
        actor,
        practice_id=therapist.practice_id,
        room_id=room_id,
    )


def check_block_room(session: Session, therapist: Therapist, room_id, modality) -> int | None:
    """The room a calendar block may name: one of the practice's, in person only."""
    if room_id in (None, "", 0):
        return None
    if Modality(modality) != Modality.IN_PERSON:
        raise InvalidInput(N_("Nur Blöcke in Präsenz haben einen Raum."), "room")
    room = session.get(Room, room_id)
    if room is None or room.practice_id != therapist.practice_id or not room.is_active:
        raise InvalidInput(N_("Bitte eine Angabe aus der Liste wählen."), "room")
    return room.id


# --- choosing a room ----------------------------------------------------------------------------


def _block_room_id(session: Session, therapist: Therapist, start_at: dt.datetime) -> int | None:
    local = start_at.astimezone(BERLIN)
    minute = local.hour * 60 + local.minute
    return session.scalar(
        select(CalendarBlock.room_id)
        .where(
            CalendarBlock.therapist_id == therapist.id,
            CalendarBlock.weekday == local.weekday(),
            CalendarBlock.start_min <= minute,
            CalendarBlock.end_min > minute,
            CalendarBlock.modality == Modality.IN_PERSON,
            CalendarBlock.room_id.is_not(None),
        )
        .limit(1)
    )


def _lock(session: Session, room: Room) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Room.id).where(Room.id == room.id).with_for_update())


def pick_room(
    session: Session,
    therapist: Therapist,
    start_at: dt.datetime,
    minutes: int,
    modality,
    *,
    room_id: int | None = None,
    weekly: bool = False,
    count: int | None = None,
    need: int = 1,
    ignore_slot_id: int | None = None,
    ignore_group_id: int | None = None,
) -> Room | None:
    """The room the new appointment takes, or None (video, or a practice without rooms).

    Raises Clash naming the room and the appointment in the way when none is free, and
    InvalidInput when no room holds `need` people or the named room is not the practice's.
    """
    if Modality(modality) != Modality.IN_PERSON or therapist.practice_id is None:
        return None
    rooms = list_rooms(session, therapist.practice_id)
    if not rooms:
        return None
    by_id = {r.id: r for r in rooms}
    if room_id is not None and room_id not in by_id:
        raise InvalidInput(N_("Bitte eine Angabe aus der Liste wählen."), "room")
    order: list[int] = []
    if room_id is not None:
        order = [room_id]
    else:
        for preferred in (_block_room_id(session, therapist, start_at), therapist.default_room_id):
            if preferred in by_id and preferred not in order:
                order.append(preferred)
        order += [r.id for r in rooms if r.id not in order]
    fitting = [i for i in order if by_id[i].capacity >= need]
    if not fitting:
        raise InvalidInput(MSG_TOO_SMALL, "room" if room_id else "max_participants", n=need)
    first_clash = None
    for candidate in fitting:
        room = by_id[candidate]
        _lock(session, room)
        what = room_clash(
            session,
            room.id,
            start_at,
            minutes,
            therapist.buffer_minutes or 0,
            weekly=weekly,
            count=count,
            ignore_slot_id=ignore_slot_id,
            ignore_group_id=ignore_group_id,
        )
        if what is None:
            return room
        if first_clash is None:
            first_clash = (room.name, what)
    raise Clash(MSG_BUSY, "start_time", room=first_clash[0], what=first_clash[1])


# --- the day plan -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanLine:
    start: dt.datetime
    end: dt.datetime
    initials: str
    kind: str  # a msgid (labels)
    booked: bool


def room_day(session: Session, practice_id: int, day: dt.date) -> list[tuple[Room, list[PlanLine]]]:
    """Each active room of the practice with what occupies it on a Berlin day, in order."""
    start = dt.datetime.combine(day, dt.time()).replace(tzinfo=BERLIN).astimezone(dt.UTC)
    end = (
        dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
        .replace(tzinfo=BERLIN)
        .astimezone(dt.UTC)
    )
    rooms = list_rooms(session, practice_id)
    plan: dict[int, list[PlanLine]] = {r.id: [] for r in rooms}
    if not rooms:
        return []
    for slot, booking_status in session.execute(
        select(Slot, Booking.status)
        .outerjoin(Booking, Booking.slot_id == Slot.id)
        .options(selectinload(Slot.therapist).selectinload(Therapist.user))
        .where(
            Slot.room_id.in_(list(plan)),
            Slot.status.in_([SlotStatus.OFFERING, SlotStatus.BOOKED]),
            (Slot.start_at < end)
            & ((Slot.start_at >= start) | (Slot.kind == SlotKind.THERAPY_PLACE)),
        )
    ):
        if booking_status in (BookingStatus.CANCELLED, BookingStatus.RELEASED):
            continue
        weekly = slot.kind == SlotKind.THERAPY_PLACE
        appt = Appointment(slot.start_at, slot.minutes, Modality.IN_PERSON, weekly)
        for s, e in appt.occurrences_near(start):
            if start <= s < end:
                plan[slot.room_id].append(
                    PlanLine(
                        s,
                        e,
                        therapist_initials(slot.therapist),
                        labels.msgid(slot.kind),
                        slot.status == SlotStatus.BOOKED,
                    )
                )
    for group in session.scalars(
        select(GroupProgram)
        .options(selectinload(GroupProgram.therapist).selectinload(Therapist.user))
        .where(
            GroupProgram.room_id.in_(list(plan)),
            GroupProgram.status.in_([GroupStatus.OPEN, GroupStatus.CONFIRMED]),
            GroupProgram.first_session_at < end,
        )
    ):
        appt = Appointment(
            group.first_session_at,
            group.minutes,
            Modality.IN_PERSON,
            True,
            count=group.session_count,
        )
        for s, e in appt.occurrences_near(start):
            if start <= s < end:
                plan[group.room_id].append(
                    PlanLine(
                        s,
                        e,
                        therapist_initials(group.therapist),
                        "Gruppe",
                        group.status == GroupStatus.CONFIRMED,
                    )
                )
    return [(r, sorted(plan[r.id], key=lambda line: line.start)) for r in rooms]
