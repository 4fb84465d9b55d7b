"""iCalendar: the patient's booking .ics across DST, the therapist feed (initials only), feed
tokens."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from icalendar import Calendar
from sqlalchemy import func, select

from ptmatch.domain import calendar
from ptmatch.domain.tokens import hash_token
from ptmatch.models import AuditEvent, BookingStatus, Modality, SlotStatus
from tests.factories import make_patient, make_practice, make_therapist
from tests.notifications.helpers import make_booking, make_slot

BERLIN = ZoneInfo("Europe/Berlin")


def _berlin(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BERLIN).astimezone(dt.UTC)


def _events(ics: bytes):
    return list(Calendar.from_ical(ics).walk("VEVENT"))


def _booking(session, start_at, **kwargs):
    practice = make_practice(
        session, name="Praxis Sonnenschein", street="Hauptstr. 1", postcode="53111", city="Bonn"
    )
    return make_booking(
        session,
        make_patient(session),
        make_therapist(session, practice),
        start_at=start_at,
        **kwargs,
    )


def test_booking_ics_holds_the_right_times_across_dst(session):
    summer = _booking(session, _berlin(2026, 10, 24, 10, 0))  # Saturday, still CEST (UTC+2)
    winter = _booking(session, _berlin(2026, 10, 26, 10, 0))  # Monday, CET again (UTC+1)
    for booking, utc_hour in ((summer, 8), (winter, 9)):
        ics = calendar.booking_ics(booking)
        [event] = _events(ics)
        start, end = event.decoded("dtstart"), event.decoded("dtend")
        assert (start.hour, start.minute) == (
            10,
            0,
        )  # wall clock in Berlin, both sides of the change
        assert start.astimezone(dt.UTC).hour == utc_hour
        assert end - start == dt.timedelta(minutes=50)
        # The embedded VTIMEZONE agrees (clients that do not know the TZID use it).
        [vtz] = Calendar.from_ical(ics).walk("VTIMEZONE")
        tz = vtz.to_tz()
        local = start.replace(tzinfo=None)
        assert local.replace(tzinfo=tz).astimezone(dt.UTC) == booking.slot.start_at


def test_booking_ics_is_a_valid_calendar_with_place_and_notes(session):
    booking = _booking(session, _berlin(2026, 12, 1, 9, 0))
    cal = Calendar.from_ical(calendar.booking_ics(booking, domain="ptmatch.test"))
    assert cal["version"] == "2.0" and cal["prodid"]
    [event] = cal.walk("VEVENT")
    assert str(event["uid"]) == f"booking-{booking.id}@ptmatch.test"
    assert "Praxis Sonnenschein, Hauptstr. 1, 53111 Bonn" == str(event["location"])
    assert "Klingel 2. OG" in str(event["description"])
    assert str(event["status"]) == "CONFIRMED" and str(event["class"]) == "PRIVATE"
    assert str(event["summary"]).startswith("Termin: Sprechstunde")


def test_cancelled_booking_is_marked_cancelled(session):
    booking = _booking(session, _berlin(2026, 12, 1, 9, 0), status=BookingStatus.CANCELLED)
    [event] = _events(calendar.booking_ics(booking))
    assert str(event["status"]) == "CANCELLED" and event["sequence"] == 1


def test_video_booking_has_no_address(session):
    booking = _booking(session, _berlin(2026, 12, 1, 9, 0), modality=Modality.VIDEO)
    [event] = _events(calendar.booking_ics(booking))
    assert "Hauptstr" not in str(event["location"])


def test_feed_shows_slots_and_bookings_with_initials_only(session, now):
    therapist = make_therapist(session)
    patient = make_patient(session, first_name="Zora", last_name="Quast", phone="+4917099999")
    booked = make_booking(session, patient, therapist, start_at=now + dt.timedelta(days=2))
    free = make_slot(session, therapist, start_at=now + dt.timedelta(days=3))
    unfilled = make_slot(
        session, therapist, start_at=now - dt.timedelta(days=1), status=SlotStatus.UNFILLED
    )
    make_slot(session, therapist, start_at=now + dt.timedelta(days=4), status=SlotStatus.CANCELLED)
    make_slot(session, therapist, start_at=now - dt.timedelta(days=60))  # too old for the feed
    make_slot(
        session, make_therapist(session), start_at=now + dt.timedelta(days=1)
    )  # a colleague's
    ics = calendar.therapist_feed(session, therapist, now)
    events = {str(e["uid"]).split("@")[0]: e for e in _events(ics)}
    assert set(events) == {f"slot-{booked.slot_id}", f"slot-{free.id}", f"slot-{unfilled.id}"}
    assert str(events[f"slot-{booked.slot_id}"]["summary"]) == "Sprechstunde: Z.Q."
    assert str(events[f"slot-{free.id}"]["status"]) == "TENTATIVE"
    text = ics.decode()
    for secret in ("Zora", "Quast", "+4917099999", patient.user.email, "Hauptstr"):
        assert secret not in text


def test_feed_marks_a_cancelled_booking(session, now):
    therapist = make_therapist(session)
    booking = make_booking(
        session,
        make_patient(session),
        therapist,
        start_at=now + dt.timedelta(days=2),
        status=BookingStatus.CANCELLED,
    )
    [event] = _events(calendar.therapist_feed(session, therapist, now))
    assert str(event["status"]) == "CANCELLED" and "." not in str(event["summary"]).split(":")[0]
    assert str(event["uid"]).startswith(f"slot-{booking.slot_id}@")


def test_rotate_stores_only_the_hash_and_replaces_the_old_token(session, now):
    therapist = make_therapist(session)
    first = calendar.rotate_feed_token(session, therapist, now=now, actor=therapist.user)
    assert (
        therapist.calendar_token_hash == hash_token(first)
        and first not in therapist.calendar_token_hash
    )
    assert calendar.get_feed_therapist(session, first) is therapist
    second = calendar.rotate_feed_token(session, therapist, now=now, actor=therapist.user)
    assert calendar.get_feed_therapist(session, first) is None
    assert calendar.get_feed_therapist(session, second) is therapist
    rotated = (
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "calendar.feed_rotated")
    )
    assert session.scalar(rotated) == 2


def test_disable_feed(session, now):
    therapist = make_therapist(session)
    token = calendar.rotate_feed_token(session, therapist)
    calendar.disable_feed(session, therapist, now=now, actor=therapist.user)
    assert therapist.calendar_token_hash is None and not calendar.is_feed_enabled(therapist)
    assert calendar.get_feed_therapist(session, token) is None


def test_feed_of_a_disabled_account_is_closed(session):
    therapist = make_therapist(session)
    token = calendar.rotate_feed_token(session, therapist)
    therapist.user.is_enabled = False
    assert calendar.get_feed_therapist(session, token) is None


def test_garbage_tokens_find_nothing(session):
    make_therapist(session, calendar_token_hash=hash_token("x"))
    for token in ("", "y", "x" * 500):
        assert calendar.get_feed_therapist(session, token) is None
