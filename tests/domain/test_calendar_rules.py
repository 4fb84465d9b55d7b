"""Calendar rules: weekly modality blocks propose and warn; clashes with buffer and switch
buffer hold for every kind of appointment, group sessions included."""

from __future__ import annotations

import datetime as dt

import pytest

from ptmatch.domain import calendar_rules
from ptmatch.domain.clashes import find_clash
from ptmatch.domain.errors import InvalidInput, NotAllowed, NotFound
from ptmatch.models import CalendarBlock, GroupStatus, Modality, SlotKind
from tests.factories import (
    make_calendar_block,
    make_group,
    make_practice,
    make_slot,
    make_therapist,
)

TUE_0900 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)  # Tuesday 09:00 Berlin (winter)
GROUP_START = dt.datetime(2026, 12, 10, 16, 0, tzinfo=dt.UTC)  # Thursday 17:00 Berlin, 100 minutes


@pytest.fixture
def therapist(session):
    # buffer 10 minutes, modality-switch buffer 15 minutes
    return make_therapist(session, make_practice(session), offers_group=True)


# --- blocks ---------------------------------------------------------------------------------------


def test_block_proposes_its_modality(session, therapist):
    make_calendar_block(
        session, therapist, weekday=1, start_min=8 * 60, end_min=12 * 60, modality="video"
    )
    assert calendar_rules.block_modality_at(session, therapist, TUE_0900) == Modality.VIDEO


def test_no_block_proposes_nothing(session, therapist):
    make_calendar_block(
        session, therapist, weekday=1, start_min=8 * 60, end_min=12 * 60, modality="video"
    )
    assert (
        calendar_rules.block_modality_at(session, therapist, TUE_0900 + dt.timedelta(hours=4))
        is None
    )
    assert (
        calendar_rules.block_modality_at(session, therapist, TUE_0900 + dt.timedelta(days=1))
        is None
    )


def test_block_is_berlin_wall_clock_across_dst(session, therapist):
    make_calendar_block(
        session, therapist, weekday=1, start_min=8 * 60, end_min=9 * 60, modality="video"
    )
    summer = dt.datetime(2027, 6, 1, 6, 30, tzinfo=dt.UTC)  # Tuesday 08:30 Berlin (CEST)
    assert calendar_rules.block_modality_at(session, therapist, summer) == Modality.VIDEO


def test_mismatch_warns(session, therapist):
    make_calendar_block(
        session, therapist, weekday=1, start_min=8 * 60, end_min=12 * 60, modality="video"
    )
    warning = calendar_rules.modality_warning(session, therapist, TUE_0900, 50, Modality.IN_PERSON)
    assert warning == calendar_rules.MISMATCH_WARNINGS[Modality.VIDEO]


def test_matching_modality_does_not_warn(session, therapist):
    make_calendar_block(
        session, therapist, weekday=1, start_min=8 * 60, end_min=12 * 60, modality="video"
    )
    assert calendar_rules.modality_warning(session, therapist, TUE_0900, 50, Modality.VIDEO) is None


def test_appointment_reaching_into_a_block_warns(session, therapist):
    make_calendar_block(
        session, therapist, weekday=1, start_min=9 * 60 + 30, end_min=12 * 60, modality="in_person"
    )
    assert calendar_rules.modality_warning(session, therapist, TUE_0900, 50, "video") is not None


def test_add_block(session, now, therapist):
    block = calendar_rules.add_block(
        session,
        now,
        therapist.user,
        therapist,
        weekday=2,
        start_min=14 * 60,
        end_min=18 * 60,
        modality="video",
    )
    assert [b.id for b in calendar_rules.list_blocks(session, therapist)] == [block.id]


def test_overlapping_blocks_refused(session, now, therapist):
    make_calendar_block(session, therapist, weekday=2, start_min=14 * 60, end_min=18 * 60)
    with pytest.raises(InvalidInput) as exc:
        calendar_rules.add_block(
            session,
            now,
            therapist.user,
            therapist,
            weekday=2,
            start_min=17 * 60,
            end_min=19 * 60,
            modality="in_person",
        )
    assert exc.value.field == "start_time"


def test_adjacent_blocks_allowed(session, now, therapist):
    make_calendar_block(session, therapist, weekday=2, start_min=14 * 60, end_min=18 * 60)
    calendar_rules.add_block(
        session,
        now,
        therapist.user,
        therapist,
        weekday=2,
        start_min=18 * 60,
        end_min=20 * 60,
        modality="in_person",
    )
    assert len(calendar_rules.list_blocks(session, therapist)) == 2


@pytest.mark.parametrize(
    "start,end,field",
    [
        (600, 600, "end_time"),
        (600, 610, "end_time"),
        (-5, 600, "start_time"),
        (600, 1500, "end_time"),
    ],
)
def test_bad_times_refused(session, now, therapist, start, end, field):
    with pytest.raises(InvalidInput) as exc:
        calendar_rules.add_block(
            session,
            now,
            therapist.user,
            therapist,
            weekday=0,
            start_min=start,
            end_min=end,
            modality="video",
        )
    assert exc.value.field == field


def test_modality_not_offered_refused(session, now):
    therapist = make_therapist(session, make_practice(session), offers_video=False)
    with pytest.raises(InvalidInput):
        calendar_rules.add_block(
            session,
            now,
            therapist.user,
            therapist,
            weekday=0,
            start_min=480,
            end_min=600,
            modality="video",
        )


def test_only_own_blocks(session, now, therapist):
    other = make_therapist(session, therapist.practice)
    with pytest.raises(NotAllowed):
        calendar_rules.add_block(
            session,
            now,
            other.user,
            therapist,
            weekday=0,
            start_min=480,
            end_min=600,
            modality="video",
        )
    block = make_calendar_block(session, therapist)
    with pytest.raises(NotFound):
        calendar_rules.remove_block(session, now, other.user, other, block.id)


def test_remove_block(session, now, therapist):
    block = make_calendar_block(session, therapist)
    calendar_rules.remove_block(session, now, therapist.user, therapist, block.id)
    assert session.get(CalendarBlock, block.id) is None


# --- clashes: buffers for every kind of appointment -----------------------------------------------


def _clash(session, therapist, start, minutes=50, modality=Modality.IN_PERSON, **kwargs):
    return find_clash(session, therapist, start, minutes, modality, **kwargs)


def test_slot_inside_buffer_after_group_session_clashes(session, therapist):
    make_group(session, therapist, first_session_at=GROUP_START)  # 17:00-18:40 Berlin
    week4 = GROUP_START + dt.timedelta(
        weeks=3, minutes=105
    )  # 18:45: five minutes after, buffer ten
    what = _clash(session, therapist, week4)
    assert what is not None and "Gruppe" in what and "31.12.2026" in what


def test_slot_after_buffer_does_not_clash(session, therapist):
    make_group(session, therapist, first_session_at=GROUP_START)
    assert _clash(session, therapist, GROUP_START + dt.timedelta(weeks=3, minutes=110)) is None


def test_switch_buffer_applies_to_group_sessions(session, therapist):
    make_group(session, therapist, first_session_at=GROUP_START)  # in person
    after = GROUP_START + dt.timedelta(
        minutes=112
    )  # 12 minutes after: ok in person, too soon for video
    assert _clash(session, therapist, after, modality=Modality.IN_PERSON) is None
    assert _clash(session, therapist, after, modality=Modality.VIDEO) is not None


def test_no_clash_after_the_groups_last_session(session, therapist):
    make_group(session, therapist, first_session_at=GROUP_START, session_count=3)
    assert _clash(session, therapist, GROUP_START + dt.timedelta(weeks=2)) is not None
    assert _clash(session, therapist, GROUP_START + dt.timedelta(weeks=3)) is None


def test_cancelled_group_does_not_block(session, therapist):
    make_group(session, therapist, first_session_at=GROUP_START, status=GroupStatus.CANCELLED)
    assert _clash(session, therapist, GROUP_START) is None


def test_group_of_another_therapist_does_not_block(session, therapist):
    colleague = make_therapist(session, therapist.practice)
    make_group(session, colleague, first_session_at=GROUP_START)
    assert _clash(session, therapist, GROUP_START) is None


def test_weekly_therapy_place_meets_a_later_group_week(session, therapist):
    make_group(session, therapist, first_session_at=GROUP_START)
    place = GROUP_START + dt.timedelta(weeks=5, minutes=-55)  # 16:05-16:55, five minutes before
    assert _clash(session, therapist, place, weekly=True) is not None


def test_new_group_meets_existing_therapy_place(session, therapist):
    make_slot(
        session,
        therapist,
        start_at=GROUP_START - dt.timedelta(weeks=4, minutes=60),
        minutes=50,
        kind=SlotKind.THERAPY_PLACE,
    )  # weekly 16:00-16:50 Berlin: ten minutes before 17:00 is fine
    assert _clash(session, therapist, GROUP_START, 100, count=10) is None
    assert (
        _clash(session, therapist, GROUP_START - dt.timedelta(minutes=5), 100, count=10) is not None
    )


def test_video_slot_between_in_person_slots_needs_switch_buffer(session, therapist):
    make_slot(session, therapist, start_at=TUE_0900, minutes=50)  # 09:00-09:50 in person
    assert (
        _clash(session, therapist, TUE_0900 + dt.timedelta(minutes=60), modality=Modality.IN_PERSON)
        is None
    )
    assert (
        _clash(session, therapist, TUE_0900 + dt.timedelta(minutes=60), modality=Modality.VIDEO)
        is not None
    )
    assert (
        _clash(session, therapist, TUE_0900 + dt.timedelta(minutes=65), modality=Modality.VIDEO)
        is None
    )


def test_group_creation_ignores_itself_when_asked(session, therapist):
    group = make_group(session, therapist, first_session_at=GROUP_START)
    assert _clash(session, therapist, GROUP_START, 100, count=10, ignore_group_id=group.id) is None
