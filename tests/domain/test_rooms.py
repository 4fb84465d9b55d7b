"""Rooms (issue 19): an in-person slot or group needs a free room, buffers included; video
needs none; a group's room holds its maximum; the day plan; the accessibility hard filter."""

from __future__ import annotations

import datetime as dt

import pytest

from ptmatch.db import settings_of
from ptmatch.domain import groups, matching, offers, rooms
from ptmatch.domain.errors import Clash, InvalidInput
from ptmatch.models import Modality, OfferMode, Preference, SlotKind
from tests.conftest import NOW
from tests.factories import (
    GROUP_START,
    empty_tables_quickly,
    make_calendar_block,
    make_patient,
    make_practice,
    make_room,
    make_therapist,
    make_user,
)

MIN = dt.timedelta(minutes=1)
START = dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC)  # Wed 14:00 Berlin


@pytest.fixture(autouse=True)
def _clean_database(engine):
    yield
    empty_tables_quickly(engine)


def _therapist(session, practice, name, **kwargs):
    user = make_user(session, display_name=name, role="therapist")
    return make_therapist(session, practice, user=user, **kwargs)


def post(session, therapist, start=START, modality=Modality.IN_PERSON, **kwargs):
    return offers.post_slot(
        session,
        NOW,
        therapist.user,
        therapist,
        start_at=start,
        minutes=50,
        kind=kwargs.pop("kind", SlotKind.SPRECHSTUNDE),
        modality=modality,
        mode=OfferMode.MANUAL,
        settings=settings_of(session),
        **kwargs,
    )


def test_second_therapist_in_the_one_room_is_refused_buffers_included(session):
    practice = make_practice(session)
    room = make_room(session, practice, name="Raum 2")
    anna = _therapist(session, practice, "Anna Berg", buffer_minutes=10)
    carl = _therapist(session, practice, "Carl Dorn", buffer_minutes=10)
    first = post(session, anna)
    assert first.room_id == room.id
    # Carl starts 5 minutes after Anna's end: inside her 10-minute buffer.
    with pytest.raises(Clash) as err:
        post(session, carl, START + 55 * MIN)
    assert err.value.message == (
        "Kein Raum frei: Raum 2 belegt durch A. B., Sprechstunde am 25.11.2026 14:00–14:50"
    )
    # A video slot at the very same time needs no room.
    video = post(session, carl, START, modality=Modality.VIDEO)
    assert video.room_id is None
    # Once the buffer has passed the room is free again.
    assert post(session, carl, START + 60 * MIN + 50 * MIN).room_id == room.id


def test_the_other_buffer_counts_too(session):
    practice = make_practice(session)
    make_room(session, practice)
    anna = _therapist(session, practice, "Anna Berg", buffer_minutes=30)
    carl = _therapist(session, practice, "Carl Dorn", buffer_minutes=0)
    post(session, anna)
    with pytest.raises(Clash):
        post(session, carl, START + 70 * MIN)  # 20 minutes after: Anna's room needs 30
    assert post(session, carl, START + 80 * MIN).room_id is not None
    # ... and so does the newcomer's own: Carl's 30 minutes before Anna's next session.
    with pytest.raises(Clash):
        post(session, anna, START + 80 * MIN + 50 * MIN + 20 * MIN)


def test_the_first_free_room_is_taken_and_named(session):
    practice = make_practice(session)
    one = make_room(session, practice, name="Raum 1")
    two = make_room(session, practice, name="Raum 2")
    anna = _therapist(session, practice, "Anna Berg")
    carl = _therapist(session, practice, "Carl Dorn", default_room_id=two.id)
    assert post(session, anna).room_id == one.id
    assert post(session, carl).room_id == two.id  # his own room first
    eve = _therapist(session, practice, "Eve Fink")
    with pytest.raises(Clash) as err:
        post(session, eve)
    assert "Raum 1 belegt durch A. B." in err.value.message


def test_a_named_room_is_checked_and_a_block_room_comes_first(session):
    practice = make_practice(session)
    one = make_room(session, practice, name="Raum 1")
    two = make_room(session, practice, name="Raum 2")
    anna = _therapist(session, practice, "Anna Berg")
    block = make_calendar_block(session, anna, weekday=2, modality="in_person")
    block.start_min, block.end_min, block.room_id = 13 * 60, 16 * 60, two.id
    session.flush()
    assert post(session, anna).room_id == two.id
    carl = _therapist(session, practice, "Carl Dorn")
    with pytest.raises(Clash):
        post(session, carl, room_id=two.id)
    assert post(session, carl, room_id=one.id).room_id == one.id
    other = make_room(session, make_practice(session))
    with pytest.raises(InvalidInput):
        post(session, carl, START + dt.timedelta(days=1), room_id=other.id)


def test_a_practice_without_rooms_posts_as_before(session):
    practice = make_practice(session)
    anna = _therapist(session, practice, "Anna Berg")
    carl = _therapist(session, practice, "Carl Dorn")
    post(session, anna)
    assert post(session, carl).room_id is None


def test_weekly_therapy_place_holds_its_room_every_week(session):
    practice = make_practice(session)
    make_room(session, practice)
    anna = _therapist(session, practice, "Anna Berg")
    carl = _therapist(session, practice, "Carl Dorn")
    post(session, anna, kind=SlotKind.THERAPY_PLACE)
    with pytest.raises(Clash):
        post(session, carl, START + dt.timedelta(weeks=2))


def _group(session, therapist, **kwargs):
    return groups.create_group(
        session,
        NOW,
        therapist.user,
        therapist,
        title="Skills",
        first_session_at=kwargs.pop("first_session_at", GROUP_START),
        session_count=kwargs.pop("session_count", 4),
        minutes=90,
        min_participants=2,
        max_participants=kwargs.pop("max_participants", 6),
        settings=settings_of(session),
        **kwargs,
    )


def test_a_group_room_must_hold_its_maximum(session):
    practice = make_practice(session)
    small = make_room(session, practice, name="Klein", capacity=4)
    big = make_room(session, practice, name="Gruppenraum", capacity=8)
    anna = _therapist(session, practice, "Anna Berg", offers_group=True)
    group = _group(session, anna)
    assert group.room_id == big.id
    with pytest.raises(InvalidInput) as err:
        _group(
            session,
            anna,
            room_id=small.id,
            first_session_at=GROUP_START + 3 * dt.timedelta(hours=1),
        )
    assert err.value.params == {"n": 6}
    with pytest.raises(InvalidInput):
        _group(
            session, anna, max_participants=9, first_session_at=GROUP_START + dt.timedelta(days=1)
        )


def test_group_sessions_hold_the_room_weekly(session):
    practice = make_practice(session)
    make_room(session, practice, capacity=8)
    anna = _therapist(session, practice, "Anna Berg", offers_group=True)
    carl = _therapist(session, practice, "Carl Dorn")
    _group(session, anna)
    with pytest.raises(Clash) as err:
        post(session, carl, GROUP_START + dt.timedelta(weeks=3))
    assert "A. B., Gruppe" in err.value.message
    assert post(session, carl, GROUP_START + dt.timedelta(weeks=4)).room_id is not None  # ended


def test_day_plan_shows_initials_and_kind(session):
    practice = make_practice(session)
    room = make_room(session, practice, name="Raum 1")
    anna = _therapist(session, practice, "Anna Berg")
    post(session, anna)
    post(session, anna, START + dt.timedelta(days=1))
    ((plan_room, lines),) = rooms.room_day(session, practice.id, dt.date(2026, 11, 25))
    assert plan_room.id == room.id
    assert [(line.initials, line.kind) for line in lines] == [("A. B.", "Sprechstunde")]
    assert lines[0].start == START


def _ranked(session, slot):
    return {c.patient_id for c in matching.rank_candidates(session, slot, NOW)}


def test_a_patient_who_needs_an_accessible_room_gets_accessible_rooms_only(session):
    practice = make_practice(session)
    stairs = make_room(session, practice, name="Dachgeschoss", accessible=False)
    anna = _therapist(session, practice, "Anna Berg")
    wheel = make_patient(session, lists=[practice], needs_accessible_room=True)
    other = make_patient(session, lists=[practice])
    upstairs = post(session, anna, room_id=stairs.id)
    assert _ranked(session, upstairs) == {other.id}
    ground = make_room(session, practice, name="Erdgeschoss", accessible=True)
    downstairs = post(session, anna, START + dt.timedelta(days=1), room_id=ground.id)
    assert _ranked(session, downstairs) == {wheel.id, other.id}
    video = post(session, anna, START + dt.timedelta(days=2), modality=Modality.VIDEO)
    assert _ranked(session, video) == {wheel.id, other.id}
    # No room at all is not known to be accessible.
    bare = make_practice(session)
    bert = _therapist(session, bare, "Bert Cole")
    make_patient(session, lists=[bare], needs_accessible_room=True)
    assert _ranked(session, post(session, bert)) == set()


def test_the_accessibility_filter_applies_to_groups(session):
    practice = make_practice(session)
    make_room(session, practice, capacity=8, accessible=False)
    anna = _therapist(session, practice, "Anna Berg", offers_group=True)
    wheel = make_patient(
        session, lists=[practice], needs_accessible_room=True, group_pref=Preference.WANTED
    )
    other = make_patient(session, lists=[practice], group_pref=Preference.WANTED)
    group = _group(session, anna, first_session_at=GROUP_START)
    found = {c.patient_id for c in groups.rank_group_candidates(session, group, NOW)}
    found |= {o.patient_id for o in session.scalars(groups.select(groups.Offer))}
    assert other.id in found and wheel.id not in found
