"""The secretariat console over HTTP: search, card, phone registration, write-only intake,
notes, lists, answering an offer for a caller, the served practices' slots."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from ptmatch.models import (
    AuditEvent,
    Booking,
    CallNote,
    EntryStatus,
    OutboxMessage,
    Patient,
    PatientClinical,
    RegisteredVia,
    WaitlistEntry,
)
from tests.conftest import NOW
from tests.factories import make_network, make_offer, make_patient, make_slot


@pytest.fixture
def net(session):
    net = make_network(
        session,
        a={"last_name": "Aufderliste", "description": "GEHEIM-BESCHREIBUNG"},
        b={"last_name": "Anderswo"},
    )
    session.commit()
    return net


@pytest.fixture
def sec_client(client, login_as, net):
    login_as(net.sec_x)
    return client


def _text(resp) -> str:
    return resp.get_data(as_text=True)


def _fresh(session) -> None:
    """Read what the requests committed: end the test's own transaction (its snapshot) and
    drop loaded state (the session factory keeps it across commits)."""
    session.rollback()
    session.expire_all()


REGISTRATION = {
    "first_name": "Karla",
    "last_name": "Telefon",
    "birth_date": "1955-02-03",
    "gender": "f",
    "phone": "0228 987654",
    "postcode": "53111",
    "max_distance_km": "15",
    "languages": ["de"],
    "therapist_gender_wish": "any",
    "insurance": "gkv",
    "video_pref": "no",
    "group_pref": "no",
    "availability": ["0-480", "0-600", "3-840"],
    "email": "karla@example.org",
    "consent_health": "y",
    "consent_rules": "y",
}


def test_search_shows_only_visible_callers(sec_client, net):
    assert "Aufderliste" in _text(sec_client.get("/sekretariat/?q=aufder"))
    page = _text(sec_client.get("/sekretariat/?q=Anderswo"))
    assert "Niemand gefunden" in page and f"/sekretariat/anrufer/{net.b.id}" not in page


def test_card_shows_identity_but_never_clinical(sec_client, net):
    page = _text(sec_client.get(f"/sekretariat/anrufer/{net.a.id}"))
    assert "Aufderliste" in page and net.a.phone in page
    assert "GEHEIM-BESCHREIBUNG" not in page and "Depression" not in page


def test_card_of_foreign_patient_is_not_found(sec_client, net):
    assert sec_client.get(f"/sekretariat/anrufer/{net.b.id}").status_code == 404


def test_register_caller_end_to_end(sec_client, session, net):
    resp = sec_client.post("/sekretariat/anrufer/neu", data=REGISTRATION)
    assert resp.status_code == 302
    _fresh(session)
    patient = session.scalar(select(Patient).where(Patient.last_name == "Telefon"))
    assert resp.headers["Location"].endswith(f"/sekretariat/anrufer/{patient.id}")
    assert (
        patient.registered_via == RegisteredVia.SECRETARIAT
        and patient.consent_recorded_by_id == net.sec_x.id
    )
    assert [(w.weekday, w.start_min, w.end_min) for w in patient.availability] == [
        (0, 480, 720),
        (3, 840, 960),
    ]
    mail = session.scalar(select(OutboxMessage).where(OutboxMessage.user_id == patient.user_id))
    token = re.search(r"/auth/set-password/([A-Za-z0-9_-]+)", mail.body_text).group(1)
    sec_client.post("/auth/logout")
    assert sec_client.get(f"/auth/set-password/{token}").status_code == 200


def test_register_caller_without_consent_shows_the_error_at_the_field(sec_client, session, net):
    data = {k: v for k, v in REGISTRATION.items() if k != "consent_health"}
    resp = sec_client.post("/sekretariat/anrufer/neu", data=data)
    assert resp.status_code == 200
    assert "Ohne Einwilligung" in _text(resp)
    _fresh(session)
    assert session.scalar(select(Patient.id).where(Patient.last_name == "Telefon")) is None


def test_register_caller_reports_form_and_domain_errors_at_once(sec_client, session, net):
    data = {
        **REGISTRATION,
        "last_name": "",
        "phone": "",
        "email": net.a.user.email,
        "birth_date": "2030-01-01",
    }
    data.pop("consent_rules")
    page = _text(sec_client.post("/sekretariat/anrufer/neu", data=data))
    for message in (
        "Bitte ausfüllen.",
        "Bitte eine Telefonnummer angeben",
        "Diese E-Mail-Adresse ist bereits registriert.",
        "Bitte ein gültiges Geburtsdatum angeben.",
        "Ohne Einwilligung",
    ):
        assert message in page, message
    assert "Bitte prüfen Sie 5 Angaben:" in page and 'value="Karla"' in page


def test_register_caller_with_bad_phone_is_a_field_error(sec_client, session, net):
    resp = sec_client.post("/sekretariat/anrufer/neu", data={**REGISTRATION, "phone": "abc"})
    assert resp.status_code == 200 and "gültige Telefonnummer" in _text(resp)


def test_intake_form_is_never_prefilled(sec_client, net):
    page = _text(sec_client.get(f"/sekretariat/anrufer/{net.a.id}/aufnahme"))
    assert "GEHEIM-BESCHREIBUNG" not in page
    assert "checked" not in page


def test_intake_post_confirms_without_echo(sec_client, session, net):
    resp = sec_client.post(
        f"/sekretariat/anrufer/{net.a.id}/aufnahme",
        data={"problems": ["anxiety"], "description": "NEU-GESAGT"},
    )
    page = _text(resp)
    assert resp.status_code == 200 and "nur für die Behandelnden sichtbar" in page
    assert "NEU-GESAGT" not in page and "GEHEIM-BESCHREIBUNG" not in page
    _fresh(session)
    assert "NEU-GESAGT" in session.get(PatientClinical, net.a.id).description


def test_intake_error_does_not_echo_stored_data(sec_client, net):
    resp = sec_client.post(f"/sekretariat/anrufer/{net.a.id}/aufnahme", data={"urgent": "y"})
    assert resp.status_code == 200
    assert "GEHEIM-BESCHREIBUNG" not in _text(resp)
    assert "PTV 11" in _text(resp)


def test_intake_for_foreign_patient_is_not_found(sec_client, session, net):
    resp = sec_client.post(f"/sekretariat/anrufer/{net.b.id}/aufnahme", data={"description": "x"})
    assert resp.status_code == 404


def test_call_note(sec_client, session, net):
    resp = sec_client.post(
        f"/sekretariat/anrufer/{net.a.id}/notiz", data={"text": "Ab 16 Uhr erreichbar"}
    )
    assert resp.status_code == 302
    _fresh(session)
    assert session.scalar(select(CallNote.text)) == "Ab 16 Uhr erreichbar"
    assert "Ab 16 Uhr erreichbar" in _text(sec_client.get(f"/sekretariat/anrufer/{net.a.id}"))


def test_empty_call_note_is_a_field_error(sec_client, session, net):
    resp = sec_client.post(f"/sekretariat/anrufer/{net.a.id}/notiz", data={"text": ""})
    assert resp.status_code == 400 and "Bitte ausfüllen" in _text(resp)


def test_join_pool_and_refuse_unserved_practice(sec_client, session, net):
    assert (
        sec_client.post(
            f"/sekretariat/anrufer/{net.a.id}/liste", data={"practice": "pool"}
        ).status_code
        == 302
    )
    resp = sec_client.post(
        f"/sekretariat/anrufer/{net.a.id}/liste", data={"practice": str(net.y.id)}
    )
    assert resp.status_code == 400
    _fresh(session)
    practices = set(
        session.scalars(
            select(WaitlistEntry.practice_id).where(WaitlistEntry.patient_id == net.a.id)
        )
    )
    assert practices == {None, net.x.id}


def test_leave_list(sec_client, session, net):
    patient_id = net.a.id
    entry_id = session.scalar(
        select(WaitlistEntry.id).where(WaitlistEntry.patient_id == patient_id)
    )
    session.rollback()  # end the test's transaction: the request writes, then we read afresh
    resp = sec_client.post(f"/sekretariat/anrufer/{patient_id}/liste/{entry_id}/austragen")
    assert resp.status_code == 302
    _fresh(session)
    assert session.get(WaitlistEntry, entry_id).status == EntryStatus.REMOVED


def test_leave_list_with_another_patients_entry_is_not_found(sec_client, session, net):
    other = make_patient(session, lists=[net.x])
    session.commit()
    patient_id = net.a.id
    entry_id = session.scalar(select(WaitlistEntry.id).where(WaitlistEntry.patient_id == other.id))
    session.rollback()
    assert (
        sec_client.post(f"/sekretariat/anrufer/{patient_id}/liste/{entry_id}/austragen").status_code
        == 404
    )


def _live_offer(session, net, patient):
    start = NOW + dt.timedelta(days=2)
    slot = make_slot(session, net.ther_x, start_at=start)
    offer = make_offer(session, slot, patient, expires_at=NOW + dt.timedelta(days=1))
    session.commit()
    return offer


def test_accept_for_caller_over_the_web(sec_client, session, net):
    offer = _live_offer(session, net, net.a)
    assert "Für die Person annehmen" in _text(sec_client.get(f"/sekretariat/anrufer/{net.a.id}"))
    resp = sec_client.post(f"/sekretariat/angebote/{offer.id}/annehmen")
    assert resp.status_code == 302
    _fresh(session)
    booking = session.scalar(select(Booking))
    assert booking.patient_id == net.a.id and booking.booked_by_id == net.sec_x.id
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "offer.accepted"))
    assert event.actor_id == net.sec_x.id


def test_answer_offer_of_foreign_patient_is_not_found(sec_client, session, net):
    slot = make_slot(session, net.ther_y, start_at=NOW + dt.timedelta(days=2))
    offer = make_offer(session, slot, net.b, expires_at=NOW + dt.timedelta(days=1))
    session.commit()
    assert sec_client.post(f"/sekretariat/angebote/{offer.id}/annehmen").status_code == 404
    _fresh(session)
    assert session.scalar(select(Booking.id)) is None


def test_slots_page_lists_served_practices_only(sec_client, session, net):
    mine = make_slot(session, net.ther_x, start_at=NOW + dt.timedelta(days=1))
    make_slot(session, net.ther_y, start_at=NOW + dt.timedelta(days=1))
    session.commit()
    page = _text(sec_client.get("/sekretariat/termine"))
    assert "Praxis X" in page and "Praxis Y" not in page
    assert mine.id  # listed under "open in the next 14 days"


def test_slots_page_survives_a_bad_day(sec_client, net):
    assert sec_client.get("/sekretariat/termine?tag=2026-13-45").status_code == 200


def test_edit_caller_profile(sec_client, session, net):
    data = {
        **REGISTRATION,
        "first_name": net.a.first_name,
        "last_name": "Aufderliste",
        "availability": ["4-1080"],
    }
    resp = sec_client.post(f"/sekretariat/anrufer/{net.a.id}/profil", data=data)
    assert resp.status_code == 302
    _fresh(session)
    patient = session.get(Patient, net.a.id)
    assert [(w.weekday, w.start_min) for w in patient.availability] == [(4, 1080)]
