"""Group pages: the therapist's groups and calendar rules, the patients' offer links."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from ptmatch.domain.tokens import hash_token
from ptmatch.models import (
    CalendarBlock,
    EnrollmentStatus,
    GroupEnrollment,
    GroupProgram,
    GroupStatus,
    Offer,
    OfferStatus,
    OutboxMessage,
    Preference,
)
from tests.conftest import NOW
from tests.factories import (
    GROUP_START,
    make_calendar_block,
    make_group,
    make_patient,
    make_practice,
    make_slot,
    make_therapist,
)

TOKEN = "group-token-0123456789abcdefghij"


@pytest.fixture
def practice(session):
    return make_practice(session)


@pytest.fixture
def therapist(session, practice):
    return make_therapist(session, practice, offers_group=True)


def _group_offer(session, group, patient, token=TOKEN, **overrides):
    fields = dict(
        group_id=group.id,
        patient_id=patient.id,
        wave=1,
        token_hash=hash_token(token),
        status=OfferStatus.PENDING,
        score=0,
        sent_at=group.created_at,
        expires_at=group.created_at + dt.timedelta(hours=24),
    )
    fields.update(overrides)
    offer = Offer(**fields)
    session.add(offer)
    session.flush()
    return offer


def _fresh(session):
    """End the test's read transaction (SQLite snapshot) and reload what the request changed."""
    session.commit()
    session.expire_all()


def _form(**overrides):
    data = dict(
        title="DBT-Skillsgruppe",
        method="dbt",
        modality="in_person",
        start_date=GROUP_START.date().isoformat(),
        start_time="17:00",
        session_count="10",
        minutes="100",
        min_participants="2",
        max_participants="3",
    )
    data.update(overrides)
    return data


# --- therapist: groups ---------------------------------------------------------------------------


def test_index_lists_groups_with_counts(client, session, login_as, therapist):
    make_group(session, therapist, title="Achtsamkeit", enrolled_count=4)
    session.commit()
    login_as(therapist.user)
    body = client.get("/praxis/gruppen/").get_data(as_text=True)
    assert "Achtsamkeit" in body and "Angemeldet 4 von 10" in body


def test_nav_shows_groups_for_therapists(client, session, login_as, therapist):
    session.commit()
    login_as(therapist.user)
    assert 'href="/praxis/gruppen/"' in client.get("/praxis/gruppen/").get_data(as_text=True)


def test_create_group_sends_offers_and_shows_it(client, session, login_as, practice, therapist):
    make_patient(session, lists=[practice], group_pref=Preference.WANTED)
    session.commit()
    login_as(therapist.user)
    resp = client.post("/praxis/gruppen/neu", data=_form())
    assert resp.status_code == 302
    session.commit()
    group = session.scalar(select(GroupProgram))
    assert group.first_session_at == GROUP_START
    assert session.scalar(select(func.count(Offer.id)).where(Offer.group_id == group.id)) == 1
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "DBT-Skillsgruppe" in page and "0 / 3" in page


def test_create_group_clash_shown_at_the_field(client, session, login_as, therapist):
    make_slot(session, therapist, start_at=GROUP_START + dt.timedelta(days=7, minutes=-5))  # week 2
    session.commit()
    login_as(therapist.user)
    resp = client.post("/praxis/gruppen/neu", data=_form())
    body = resp.get_data(as_text=True)
    assert (
        resp.status_code == 200
        and "Überschneidung" in body
        and (GROUP_START + dt.timedelta(days=7)).strftime("%d.%m.%Y") in body
    )
    session.commit()
    assert session.scalar(select(func.count(GroupProgram.id))) == 0


def test_create_group_too_soon_refused(client, session, login_as, therapist):
    session.commit()
    login_as(therapist.user)
    body = client.post(
        "/praxis/gruppen/neu",
        data=_form(start_date=(NOW + dt.timedelta(days=1)).date().isoformat()),
    ).get_data(as_text=True)
    assert "48 Stunden" in body


def test_create_group_bad_numbers_message_not_500(client, session, login_as, therapist):
    session.commit()
    login_as(therapist.user)
    resp = client.post(
        "/praxis/gruppen/neu", data=_form(min_participants="8", max_participants="5")
    )
    assert resp.status_code == 200 and "Mindestzahl" in resp.get_data(as_text=True)


def test_detail_shows_participants_and_waitlist_in_order(
    client, session, login_as, practice, therapist
):
    group = make_group(session, therapist, enrolled_count=1)
    a, b, c = (
        make_patient(session, lists=[practice], first_name=name)
        for name in ("Anna", "Bernd", "Clara")
    )
    session.add_all(
        [
            GroupEnrollment(
                group_id=group.id,
                patient_id=a.id,
                status=EnrollmentStatus.ENROLLED,
                created_at=group.created_at,
            ),
            GroupEnrollment(
                group_id=group.id,
                patient_id=c.id,
                status=EnrollmentStatus.WAITLISTED,
                position=1,
                created_at=group.created_at,
            ),
            GroupEnrollment(
                group_id=group.id,
                patient_id=b.id,
                status=EnrollmentStatus.WAITLISTED,
                position=2,
                created_at=group.created_at,
            ),
        ]
    )
    session.commit()
    login_as(therapist.user)
    body = client.get(f"/praxis/gruppen/{group.id}").get_data(as_text=True)
    assert "Anna" in body
    assert body.index("Clara") < body.index("Bernd")


def test_detail_of_other_practice_is_404(client, session, login_as, therapist):
    other = make_therapist(session, make_practice(session), offers_group=True)
    group = make_group(session, other)
    session.commit()
    login_as(therapist.user)
    assert client.get(f"/praxis/gruppen/{group.id}").status_code == 404


def test_therapist_removes_participant_and_seat_goes_to_waitlist(
    client, session, login_as, practice, therapist
):
    group = make_group(session, therapist, enrolled_count=10)
    a, b = make_patient(session, lists=[practice]), make_patient(session, lists=[practice])
    enrolled = GroupEnrollment(
        group_id=group.id,
        patient_id=a.id,
        status=EnrollmentStatus.ENROLLED,
        created_at=group.created_at,
    )
    session.add_all(
        [
            enrolled,
            GroupEnrollment(
                group_id=group.id,
                patient_id=b.id,
                status=EnrollmentStatus.WAITLISTED,
                position=1,
                created_at=group.created_at,
            ),
        ]
    )
    _group_offer(session, group, b, status=OfferStatus.ACCEPTED)
    session.commit()
    login_as(therapist.user)
    resp = client.post(f"/praxis/gruppen/{group.id}/teilnahme/{enrolled.id}/beenden")
    assert resp.status_code == 302
    _fresh(session)
    assert session.get(GroupProgram, group.id).enrolled_count == 9
    seat = session.scalar(select(Offer).where(Offer.patient_id == b.id))
    assert seat.status == OfferStatus.PENDING
    session.commit()


# --- therapist: calendar rules --------------------------------------------------------------------


def test_add_and_remove_block(client, session, login_as, therapist):
    session.commit()
    login_as(therapist.user)
    resp = client.post(
        "/praxis/gruppen/kalenderregeln",
        data={"weekday": "1", "start_time": "08:00", "end_time": "12:00", "modality": "video"},
    )
    assert resp.status_code == 302
    page = client.get("/praxis/gruppen/kalenderregeln").get_data(as_text=True)
    assert "Dienstag, 08:00–12:00" in page
    session.commit()
    block = session.scalar(select(CalendarBlock))
    assert client.post(f"/praxis/gruppen/kalenderregeln/{block.id}/loeschen").status_code == 302
    _fresh(session)
    assert session.scalar(select(func.count(CalendarBlock.id))) == 0
    session.commit()


def test_overlapping_block_message_at_field(client, session, login_as, therapist):
    make_calendar_block(session, therapist, weekday=1, start_min=480, end_min=720)
    session.commit()
    login_as(therapist.user)
    resp = client.post(
        "/praxis/gruppen/kalenderregeln",
        data={"weekday": "1", "start_time": "11:00", "end_time": "13:00", "modality": "in_person"},
    )
    assert resp.status_code == 200 and "überschneidet sich" in resp.get_data(as_text=True)


def test_block_of_colleague_cannot_be_removed(client, session, login_as, practice, therapist):
    colleague = make_therapist(session, practice)
    block = make_calendar_block(session, colleague)
    session.commit()
    login_as(therapist.user)
    assert client.post(f"/praxis/gruppen/kalenderregeln/{block.id}/loeschen").status_code == 404


# --- patients: the mailed link --------------------------------------------------------------------


def test_offer_page_shows_group_and_keeps_lists_note(client, session, practice, therapist):
    patient = make_patient(session, lists=[practice])
    group = make_group(session, therapist)
    _group_offer(session, group, patient)
    session.commit()
    resp = client.get(f"/g/{TOKEN}")
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Skillsgruppe" in body
    assert "bleiben auf allen Wartelisten für Einzeltherapie" in body
    assert resp.headers["Cache-Control"] == "no-store"


def test_get_changes_nothing(client, session, practice, therapist):
    patient = make_patient(session, lists=[practice])
    group = make_group(session, therapist)
    offer = _group_offer(session, group, patient)
    session.commit()
    client.get(f"/g/{TOKEN}")
    _fresh(session)
    assert session.get(Offer, offer.id).status == OfferStatus.PENDING
    session.commit()


@pytest.mark.parametrize("token", ["not-a-real-token-0123456789abcdef", "short", "x" * 300])
def test_bad_tokens_get_the_neutral_page(client, token):
    resp = client.get(f"/g/{token}")
    assert resp.status_code == 404 and "nicht (mehr) verfügbar" in resp.get_data(as_text=True)
    assert client.post(f"/g/{token}/annehmen").status_code == 404


def test_accept_by_link_enrols_then_token_is_dead(client, session, practice, therapist):
    patient = make_patient(session, lists=[practice])
    group = make_group(session, therapist)
    _group_offer(session, group, patient)
    session.commit()
    resp = client.post(f"/g/{TOKEN}/annehmen")
    assert resp.status_code == 303 and resp.location.endswith(f"/g/{TOKEN}")  # reloadable
    shown = client.get(resp.location)
    assert shown.status_code == 200 and "Sie sind angemeldet" in shown.get_data(as_text=True)
    again = client.post(f"/g/{TOKEN}/annehmen")  # double submit / back button
    assert again.status_code == 404
    _fresh(session)
    assert session.get(GroupProgram, group.id).enrolled_count == 1
    assert (
        session.scalar(
            select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == "group_enrolled")
        )
        == 1
    )
    session.commit()


def test_accept_full_group_joins_waitlist(client, session, practice, therapist):
    patient = make_patient(session, lists=[practice])
    group = make_group(session, therapist, enrolled_count=10)
    _group_offer(session, group, patient)
    session.commit()
    assert "voll" in client.get(f"/g/{TOKEN}").get_data(as_text=True)
    body = client.post(f"/g/{TOKEN}/annehmen", follow_redirects=True).get_data(as_text=True)
    assert "Warteliste" in body
    _fresh(session)
    enrollment = session.scalar(select(GroupEnrollment))
    assert enrollment.status == EnrollmentStatus.WAITLISTED and enrollment.position == 1
    session.commit()


def test_decline_by_link(client, session, practice, therapist):
    patient = make_patient(session, lists=[practice])
    group = make_group(session, therapist)
    offer = _group_offer(session, group, patient)
    session.commit()
    declined = client.post(f"/g/{TOKEN}/ablehnen", follow_redirects=True)
    assert "abgelehnt" in declined.get_data(as_text=True)
    _fresh(session)
    assert session.get(Offer, offer.id).status == OfferStatus.DECLINED
    session.commit()


def test_foreign_patient_with_token_gets_neutral_page(
    client, session, login_as, practice, therapist
):
    patient, other = (
        make_patient(session, lists=[practice]),
        make_patient(session, lists=[practice]),
    )
    group = make_group(session, therapist)
    _group_offer(session, group, patient)
    session.commit()
    login_as(other.user)
    assert client.get(f"/g/{TOKEN}").status_code == 404
    assert client.post(f"/g/{TOKEN}/annehmen").status_code == 404


def test_cancelled_group_token_is_neutral(client, session, practice, therapist):
    patient = make_patient(session, lists=[practice])
    group = make_group(session, therapist, status=GroupStatus.CANCELLED)
    _group_offer(session, group, patient)
    session.commit()
    assert client.get(f"/g/{TOKEN}").status_code == 404


# --- patients: logged in --------------------------------------------------------------------------


def test_patient_sees_offer_and_answers_from_overview(
    client, session, login_as, practice, therapist
):
    patient = make_patient(session, lists=[practice])
    group = make_group(session, therapist)
    offer = _group_offer(session, group, patient)
    session.commit()
    login_as(patient.user)
    overview = client.get("/patient/gruppen").get_data(as_text=True)
    assert f"/patient/gruppen/angebot/{offer.id}" in overview
    assert client.get(f"/patient/gruppen/angebot/{offer.id}").status_code == 200
    body = client.post(f"/patient/gruppen/angebot/{offer.id}/annehmen").get_data(as_text=True)
    assert "Sie sind angemeldet" in body


def test_other_patients_offer_is_404(client, session, login_as, practice, therapist):
    patient, other = (
        make_patient(session, lists=[practice]),
        make_patient(session, lists=[practice]),
    )
    offer = _group_offer(session, make_group(session, therapist), patient)
    session.commit()
    login_as(other.user)
    assert client.get(f"/patient/gruppen/angebot/{offer.id}").status_code == 404
    assert client.post(f"/patient/gruppen/angebot/{offer.id}/annehmen").status_code == 404


def test_patient_withdraws(client, session, login_as, practice, therapist):
    patient = make_patient(session, lists=[practice])
    group = make_group(session, therapist, enrolled_count=1)
    enrollment = GroupEnrollment(
        group_id=group.id,
        patient_id=patient.id,
        status=EnrollmentStatus.ENROLLED,
        created_at=group.created_at,
    )
    session.add(enrollment)
    session.commit()
    login_as(patient.user)
    assert client.post(f"/patient/gruppen/{enrollment.id}/abmelden").status_code == 302
    _fresh(session)
    assert session.get(GroupEnrollment, enrollment.id).status == EnrollmentStatus.WITHDRAWN
    assert session.get(GroupProgram, group.id).enrolled_count == 0
    session.commit()
