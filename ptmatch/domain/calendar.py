"""iCalendar: a patient's .ics for one booking, and a therapist's private feed.

Times are written as Europe/Berlin wall-clock with a VTIMEZONE (the EU rule: summer time
from the last Sunday of March to the last Sunday of October), so every client shows the
practice's local time on both sides of a DST change.

The therapist feed is reached through a secret URL (a bearer token): only its SHA-256 hash
is stored (`Therapist.calendar_token_hash`); the lookup is by hash, so no string
comparison on the secret can leak timing. It shows the therapist's slots and bookings with
patients by initials only, no address, no contact, nothing clinical.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone, TimezoneDaylight, TimezoneStandard
from sqlalchemy import select
from sqlalchemy.orm import Session

from ptmatch import labels
from ptmatch.domain import audit
from ptmatch.domain.tokens import hash_token, new_token
from ptmatch.models import (
    Booking,
    BookingStatus,
    Modality,
    Patient,
    Slot,
    SlotStatus,
    Therapist,
    User,
)
from ptmatch.notifications.outbox import translations

BERLIN = ZoneInfo("Europe/Berlin")
PRODID = "-//ptmatch//ptmatch//DE"
FEED_PAST = dt.timedelta(days=30)
FEED_FUTURE = dt.timedelta(days=365)
FEED_LIMIT = 2000

# Bookings that hold the hour (released = the session took place, the practice let the patient go).
HELD = (
    BookingStatus.CONFIRMED,
    BookingStatus.ATTENDED,
    BookingStatus.NO_SHOW,
    BookingStatus.RELEASED,
)


def _berlin_timezone() -> Timezone:
    tz = Timezone()
    tz.add("tzid", "Europe/Berlin")
    summer = TimezoneDaylight()
    summer.add("tzname", "CEST")
    summer.add("dtstart", dt.datetime(1996, 3, 31, 2, 0))
    summer.add("rrule", {"freq": "yearly", "bymonth": 3, "byday": "-1su"})
    summer.add("tzoffsetfrom", dt.timedelta(hours=1))
    summer.add("tzoffsetto", dt.timedelta(hours=2))
    winter = TimezoneStandard()
    winter.add("tzname", "CET")
    winter.add("dtstart", dt.datetime(1996, 10, 27, 3, 0))
    winter.add("rrule", {"freq": "yearly", "bymonth": 10, "byday": "-1su"})
    winter.add("tzoffsetfrom", dt.timedelta(hours=2))
    winter.add("tzoffsetto", dt.timedelta(hours=1))
    tz.add_component(summer)
    tz.add_component(winter)
    return tz


def _calendar(name: str | None = None) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    if name:
        cal.add("x-wr-calname", name)
        cal.add("x-wr-timezone", "Europe/Berlin")
    cal.add_component(_berlin_timezone())
    return cal


def _event(uid: str, start: dt.datetime, minutes: int, summary: str, stamp: dt.datetime) -> Event:
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp.astimezone(dt.UTC))
    event.add("dtstart", start.astimezone(BERLIN))
    event.add("dtend", (start + dt.timedelta(minutes=minutes)).astimezone(BERLIN))
    event.add("summary", summary)
    event.add("class", "PRIVATE")  # shared calendars show "busy", not the title
    return event


def booking_ics(booking: Booking, *, locale: str = "de", domain: str = "ptmatch") -> bytes:
    """The patient's own .ics for a booking: time, place (address or video) and the practice's
    notes."""
    _ = translations(locale).gettext
    slot: Slot = booking.slot
    practice = slot.practice
    cal = _calendar()
    event = _event(
        f"booking-{booking.id}@{domain}",
        slot.start_at,
        slot.minutes,
        f"{_('Termin')}: {_(labels.msgid(slot.kind))} – {practice.name}",
        booking.changed_at or booking.created_at,
    )
    if slot.modality == Modality.VIDEO:
        event.add("location", _("Videotermin (den Link finden Sie nach der Anmeldung)"))
    else:
        address = ", ".join(
            part
            for part in (
                practice.name,
                practice.street,
                f"{practice.postcode} {practice.city}".strip(),
            )
            if part
        )
        event.add("location", address)
    notes = [text for text in (practice.booking_info, practice.cancellation_policy) if text]
    if notes:
        event.add("description", "\n\n".join(notes))
    cancelled = booking.status == BookingStatus.CANCELLED
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("sequence", 1 if cancelled else 0)
    cal.add_component(event)
    return cal.to_ical()


def _initials(first: str | None, last: str | None) -> str:
    return "".join(part[:1].upper() + "." for part in (first, last) if part) or "?"


def therapist_feed(
    session: Session, therapist: Therapist, now: dt.datetime, *, domain: str = "ptmatch"
) -> bytes:
    """The therapist's slots from 30 days back to a year ahead; booked ones with the patient's
    initials."""
    locale = therapist.user.locale if therapist.user else "de"
    _ = translations(locale).gettext
    rows = session.execute(
        select(Slot, Booking.status, Patient.first_name, Patient.last_name)
        .outerjoin(Booking, Booking.slot_id == Slot.id)
        .outerjoin(Patient, Patient.id == Booking.patient_id)
        .where(
            Slot.therapist_id == therapist.id,
            Slot.status != SlotStatus.CANCELLED,
            Slot.start_at >= now - FEED_PAST,
            Slot.start_at <= now + FEED_FUTURE,
        )
        .order_by(Slot.start_at)
        .limit(FEED_LIMIT)
    ).all()
    cal = _calendar("ptmatch")
    for slot, booking_status, first, last in rows:
        kind = _(labels.msgid(slot.kind))
        if booking_status in HELD:
            summary, status = f"{kind}: {_initials(first, last)}", "CONFIRMED"
        elif booking_status == BookingStatus.CANCELLED:
            summary, status = f"{_('Abgesagt')}: {kind}", "CANCELLED"
        elif slot.status == SlotStatus.OFFERING:
            summary, status = f"{_('Frei, wird angeboten')}: {kind}", "TENTATIVE"
        else:
            summary, status = f"{_('Frei, nicht vergeben')}: {kind}", "TENTATIVE"
        if slot.modality == Modality.VIDEO:
            summary += f" ({_('Video')})"
        event = _event(f"slot-{slot.id}@{domain}", slot.start_at, slot.minutes, summary, now)
        event.add("status", status)
        cal.add_component(event)
    return cal.to_ical()


def rotate_feed_token(
    session: Session,
    therapist: Therapist,
    *,
    now: dt.datetime | None = None,
    actor: User | None = None,
) -> str:
    """A new secret feed URL token; the old URL stops working. Returns the token (shown once)."""
    token, digest = new_token()
    therapist.calendar_token_hash = digest
    if now is not None:
        audit.record(
            session,
            now,
            "calendar.feed_rotated",
            actor,
            subject_user_id=therapist.user_id,
            practice_id=therapist.practice_id,
        )
    session.flush()
    return token


def disable_feed(
    session: Session,
    therapist: Therapist,
    *,
    now: dt.datetime | None = None,
    actor: User | None = None,
) -> None:
    """Switch the feed off: the URL returns 404 from now on."""
    therapist.calendar_token_hash = None
    if now is not None:
        audit.record(
            session,
            now,
            "calendar.feed_disabled",
            actor,
            subject_user_id=therapist.user_id,
            practice_id=therapist.practice_id,
        )
    session.flush()


def is_feed_enabled(therapist: Therapist) -> bool:
    return therapist.calendar_token_hash is not None


def get_feed_therapist(session: Session, token: str) -> Therapist | None:
    """The therapist whose feed `token` opens, or None (unknown, disabled, or account off)."""
    if not token or len(token) > 128:
        return None
    therapist = session.scalar(
        select(Therapist).where(Therapist.calendar_token_hash == hash_token(token))
    )
    if therapist is None or not therapist.is_approved or not therapist.user.is_enabled:
        return None
    return therapist
