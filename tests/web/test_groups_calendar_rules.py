"""Calendar rules on the slot form: a block proposes its modality; a mismatch only warns."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from ptmatch.models import Modality, Slot
from tests.factories import make_calendar_block, make_practice, make_therapist


@pytest.fixture
def therapist(session):
    return make_therapist(session, make_practice(session), offers_video=True, offers_in_person=True)


def _video_all_week(session, therapist):
    for weekday in range(7):
        make_calendar_block(
            session, therapist, weekday=weekday, start_min=0, end_min=24 * 60, modality="video"
        )


def _selected_modality(html: str) -> str | None:
    select_html = re.search(r'<select[^>]*name="modality".*?</select>', html, re.S).group(0)
    match = re.search(
        r'<option[^>]*selected[^>]*value="([^"]+)"|<option[^>]*value="([^"]+)"[^>]*selected',
        select_html,
    )
    return next(g for g in match.groups() if g) if match else None


def test_slot_form_proposes_the_blocks_modality(client, session, login_as, therapist):
    _video_all_week(session, therapist)
    session.commit()
    login_as(therapist.user)
    assert _selected_modality(client.get("/termine/neu").get_data(as_text=True)) == "video"


def test_slot_form_default_without_block(client, session, login_as, therapist):
    session.commit()
    login_as(therapist.user)
    assert _selected_modality(client.get("/termine/neu").get_data(as_text=True)) == "in_person"


def test_mismatch_warns_but_posts(client, session, login_as, therapist):
    _video_all_week(session, therapist)
    session.commit()
    login_as(therapist.user)
    resp = client.post(
        "/termine/neu",
        data={
            "start_time": "10:00",
            "minutes": "50",
            "kind": "sprechstunde",
            "modality": "in_person",
            "mode": "manual",
            "tomorrow": "Morgen",
        },
        follow_redirects=True,
    )
    assert resp.status_code == 200
    assert "für Video-Termine vorgesehen" in resp.get_data(as_text=True)
    session.commit()
    assert session.scalar(select(Slot.modality)) == Modality.IN_PERSON


def test_matching_modality_does_not_warn(client, session, login_as, therapist):
    _video_all_week(session, therapist)
    session.commit()
    login_as(therapist.user)
    resp = client.post(
        "/termine/neu",
        data={
            "start_time": "10:00",
            "minutes": "50",
            "kind": "sprechstunde",
            "modality": "video",
            "mode": "manual",
            "tomorrow": "Morgen",
        },
        follow_redirects=True,
    )
    assert resp.status_code == 200 and "vorgesehen" not in resp.get_data(as_text=True)
