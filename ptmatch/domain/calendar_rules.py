"""Calendar rules: weekly blocks a therapist reserves for one modality (video or in person).

A block is Europe/Berlin wall-clock time (weekday 0 = Monday, minutes after midnight), so
"Tuesday 8-12 video" stays 8-12 across daylight-saving changes. Blocks never refuse an
appointment: posting a slot inside a block *proposes* the block's modality, and choosing
the other one only earns a warning (``modality_warning``). Refusals come from the clash
check (``ptmatch.domain.clashes``), where the buffer and the modality-switch buffer apply to
every kind of appointment: slots of any kind, therapy places and weekly group sessions.

Blocks of one therapist never overlap, so "the block at this time" is unambiguous.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ptmatch.catalog import N_
from ptmatch.domain import audit
from ptmatch.domain.errors import InvalidInput, NotAllowed, NotFound, enum_value
from ptmatch.models import CalendarBlock, Modality, Therapist, User

BERLIN = ZoneInfo("Europe/Berlin")
DAY_MINUTES = 24 * 60
MIN_BLOCK_MINUTES = 15
MAX_BLOCKS = 50  # per therapist: a week has room for plenty

WEEKDAYS = (
    N_("Montag"),
    N_("Dienstag"),
    N_("Mittwoch"),
    N_("Donnerstag"),
    N_("Freitag"),
    N_("Samstag"),
    N_("Sonntag"),
)
# Shown when the chosen modality differs from the block's (a warning, never a refusal).
MISMATCH_WARNINGS = {
    Modality.VIDEO: N_("Laut Ihren Kalenderregeln ist diese Zeit für Video-Termine vorgesehen."),
    Modality.IN_PERSON: N_(
        "Laut Ihren Kalenderregeln ist diese Zeit für Termine in Präsenz vorgesehen."
    ),
}


def _require_own(actor: User | None, therapist: Therapist) -> None:
    if actor is None or not actor.is_enabled or actor.id != therapist.user_id:
        raise NotAllowed(N_("Sie dürfen nur Ihre eigenen Kalenderregeln ändern."))


def _local(start_at: dt.datetime) -> tuple[int, int]:
    """(weekday, minutes after midnight) of a UTC instant on the Berlin wall clock."""
    local = start_at.astimezone(BERLIN)
    return local.weekday(), local.hour * 60 + local.minute


def list_blocks(session: Session, therapist: Therapist) -> list[CalendarBlock]:
    return list(
        session.scalars(
            select(CalendarBlock)
            .where(CalendarBlock.therapist_id == therapist.id)
            .order_by(CalendarBlock.weekday, CalendarBlock.start_min, CalendarBlock.id)
        )
    )


def add_block(
    session: Session,
    now: dt.datetime,
    actor: User | None,
    therapist: Therapist,
    *,
    weekday: int,
    start_min: int,
    end_min: int,
    modality,
    room_id: int | None = None,
) -> CalendarBlock:
    """Reserve a weekly block for one modality. Refused: bad times, shorter than 15 minutes,
    overlapping another block of the therapist, or a modality the profile does not offer.
    `room_id` (in person, checked by ``rooms.check_block_room``): posting inside the block
    takes this room first."""
    _require_own(actor, therapist)
    if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
        raise InvalidInput(N_("Bitte einen Wochentag wählen."), "weekday")
    for value, field in ((start_min, "start_time"), (end_min, "end_time")):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= DAY_MINUTES:
            raise InvalidInput(N_("Bitte eine Uhrzeit angeben."), field)
    if end_min <= start_min:
        raise InvalidInput(N_("Das Ende muss nach dem Beginn liegen."), "end_time")
    if end_min - start_min < MIN_BLOCK_MINUTES:
        raise InvalidInput(N_("Ein Block dauert mindestens 15 Minuten."), "end_time")
    modality = enum_value(Modality, modality, "modality")
    if (modality == Modality.VIDEO and not therapist.offers_video) or (
        modality == Modality.IN_PERSON and not therapist.offers_in_person
    ):
        raise InvalidInput(N_("Diese Form bieten Sie laut Profil nicht an."), "modality")
    existing = list_blocks(session, therapist)
    if len(existing) >= MAX_BLOCKS:
        raise InvalidInput(N_("Sie haben bereits die größtmögliche Zahl an Blöcken angelegt."))
    for other in existing:
        if other.weekday == weekday and other.start_min < end_min and start_min < other.end_min:
            raise InvalidInput(
                N_("Dieser Block überschneidet sich mit einem anderen Block."), "start_time"
            )
    block = CalendarBlock(
        therapist_id=therapist.id,
        weekday=weekday,
        start_min=start_min,
        end_min=end_min,
        modality=modality,
        room_id=room_id,
    )
    session.add(block)
    session.flush()
    audit.record(
        session,
        now,
        "calendar.block_added",
        actor,
        practice_id=therapist.practice_id,
        block_id=block.id,
        weekday=weekday,
        start_min=start_min,
        end_min=end_min,
        modality=str(modality),
    )
    return block


def remove_block(
    session: Session, now: dt.datetime, actor: User | None, therapist: Therapist, block_id: int
) -> None:
    _require_own(actor, therapist)
    block = session.get(CalendarBlock, block_id)
    if block is None or block.therapist_id != therapist.id:
        raise NotFound(N_("Nicht gefunden."))
    session.delete(block)
    session.flush()
    audit.record(
        session,
        now,
        "calendar.block_removed",
        actor,
        practice_id=therapist.practice_id,
        block_id=block_id,
    )


def block_at(session: Session, therapist: Therapist, start_at: dt.datetime) -> CalendarBlock | None:
    """The therapist's block that contains this start time (Berlin wall clock), or None."""
    weekday, minute = _local(start_at)
    return session.scalar(
        select(CalendarBlock)
        .where(
            CalendarBlock.therapist_id == therapist.id,
            CalendarBlock.weekday == weekday,
            CalendarBlock.start_min <= minute,
            CalendarBlock.end_min > minute,
        )
        .order_by(CalendarBlock.start_min, CalendarBlock.id)
        .limit(1)
    )


def block_modality_at(
    session: Session, therapist: Therapist, start_at: dt.datetime
) -> Modality | None:
    """The modality to propose for an appointment starting at `start_at`, or None (no block)."""
    block = block_at(session, therapist, start_at)
    return block.modality if block is not None else None


def blocks_touching(
    session: Session, therapist: Therapist, start_at: dt.datetime, minutes: int
) -> list[CalendarBlock]:
    """The blocks an appointment [start, start + minutes) reaches into, on its local day."""
    weekday, minute = _local(start_at)
    end = minute + max(int(minutes or 0), 1)
    return list(
        session.scalars(
            select(CalendarBlock)
            .where(
                CalendarBlock.therapist_id == therapist.id,
                CalendarBlock.weekday == weekday,
                CalendarBlock.start_min < end,
                CalendarBlock.end_min > minute,
            )
            .order_by(CalendarBlock.start_min, CalendarBlock.id)
        )
    )


def modality_warning(
    session: Session, therapist: Therapist, start_at: dt.datetime, minutes: int, modality
) -> str | None:
    """A German msgid when the appointment reaches into a block of the other modality, else
    None. A warning only: the caller still posts the appointment."""
    try:
        modality = Modality(modality)
    except ValueError:
        return None
    for block in blocks_touching(session, therapist, start_at, minutes):
        if block.modality != modality:
            return MISMATCH_WARNINGS[block.modality]
    return None


def minutes_label(minute: int) -> str:
    """'08:30' for 510 (24:00 for the end of the day)."""
    return f"{minute // 60:02d}:{minute % 60:02d}"
