"""The patient area in the browser: registration, verification, dashboard, lists, pause,
export, deletion, check-in answers and a practice's own link."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from sqlalchemy import func, select

from ptmatch import links
from ptmatch.models import (
    EntryStatus,
    OutboxMessage,
    Patient,
    PatientStatus,
    Postcode,
    RegisteredVia,
    Role,
    TokenPurpose,
    User,
    WaitlistEntry,
)
from tests.factories import PASSWORD, make_patient, make_practice, make_therapist, make_user

FORM = {
    "email": "Greta.Lindqvist@example.org",
    "password": "lange-und-sicher-2026",
    "password_repeat": "lange-und-sicher-2026",
    "first_name": "Greta",
    "last_name": "Lindqvist",
    "phone": "0176 98765432",
    "birth_date": "1992-07-01",
    "gender": "f",
    "postcode": "53111",
    "max_distance_km": "20",
    "languages": ["de"],
    "therapist_gender_wish": "any",
    "methods": ["vt"],
    "insurance": "gkv",
    "video_pref": "acceptable",
    "group_pref": "no",
    "availability": ["0-480", "0-600", "2-1080"],
    "problems": ["depression"],
    "description": "Antriebslos.",
    "urgency_code": "",
    "consent_health": "y",
    "consent_rules": "y",
}


def post_form(client, url, **changes):
    data = {**FORM, **changes}
    return client.post(url, data={k: v for k, v in data.items() if v is not None})


def mail_link(sessions, kind: str, marker: str) -> str:
    with sessions() as s:
        body = s.scalar(
            select(OutboxMessage.body_text)
            .where(OutboxMessage.kind == kind)
            .order_by(OutboxMessage.id.desc())
        )
    match = re.search(re.escape(marker) + r"[A-Za-z0-9_\-]+", body)
    return match.group(0)


# --- registration --------------------------------------------------------------------------


def test_registration_page_has_the_grid_and_the_crisis_notice(client):
    html = client.get("/patient/registrieren").get_data(as_text=True)
    assert 'name="availability" value="0-480"' in html and 'name="whole_days"' in html
    assert "112" in html and "0800 111 0 111" in html


def test_registration_happy_path(client, sessions):
    response = post_form(client, "/patient/registrieren")
    assert response.status_code == 302 and response.location.endswith("/patient/registriert")
    with sessions() as s:
        patient = s.scalar(select(Patient))
        assert (patient.first_name, patient.phone) == ("Greta", "+4917698765432")
        assert [(w.weekday, w.start_min, w.end_min) for w in patient.availability] == [
            (0, 480, 720),
            (2, 1080, 1200),
        ]
        assert s.get(User, patient.user_id).email == "greta.lindqvist@example.org"
        assert s.scalar(select(OutboxMessage.kind)) == "verify_email"


def test_whole_day_ticks_fill_the_day(client, sessions):
    post_form(client, "/patient/registrieren", availability=[], whole_days=["5"])
    with sessions() as s:
        assert [
            (w.weekday, w.start_min, w.end_min) for w in s.scalar(select(Patient)).availability
        ] == [(5, 480, 1200)]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(first_name=""), "Bitte ausfüllen."),
        (dict(last_name="x" * 101), "100"),
        (dict(email="kein-at"), "E-Mail"),
        (dict(password="kurz", password_repeat="kurz"), "Mindestens 10 Zeichen."),
        (dict(password_repeat="etwas anderes!"), "Die Passwörter stimmen nicht überein."),
        (dict(phone="123"), "Bitte eine gültige Telefonnummer angeben."),
        (dict(birth_date="gestern"), "birth_date"),
        (dict(birth_date="2030-01-01"), "Bitte ein gültiges Geburtsdatum angeben."),
        (dict(postcode="123"), "Bitte eine fünfstellige Postleitzahl angeben."),
        (dict(max_distance_km="0"), "max_distance_km"),
        (dict(languages=[]), "Bitte mindestens eine Sprache wählen."),
        (dict(availability=[]), "Bitte wählen Sie mindestens ein Zeitfenster"),
        (dict(availability=["9-480"]), "availability"),
        (dict(insurance="aok"), "insurance"),
        (
            dict(urgent="y", urgency_code=""),
            "Bitte geben Sie den Code von Ihrem Formular PTV 11 an.",
        ),
        (dict(description="a\x00b"), "Enthält ungültige Zeichen."),
        (dict(consent_health=None), "Ohne diese Einwilligung"),
        (dict(consent_rules=None), "Absage- und Ausfallregeln"),
    ],
)
def test_registration_error_is_shown_at_the_field(client, sessions, changes, message):
    response = post_form(client, "/patient/registrieren", **changes)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "invalid-feedback" in html and message in html
    with sessions() as s:
        assert s.scalar(select(func.count(User.id))) == 0


def test_form_and_domain_errors_come_in_one_round(client, session, sessions):
    """A field the form refuses (empty first name, mismatched repeat) and fields only the
    domain refuses (a short password, a future birth date, an unknown postcode, no PTV 11
    code) are all reported at once: next to each field and in the summary at the top, with
    everything entered kept."""
    session.add(Postcode(code="53111", place="Bonn", lat=50.7, lon=7.1))
    session.commit()
    response = post_form(
        client,
        "/patient/registrieren",
        first_name="",
        password="kurz",
        password_repeat="kurz",
        birth_date="2030-01-01",
        consent_rules=None,
        postcode="99999",
        urgent="y",
        urgency_code="",
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for message in (
        "Bitte ausfüllen.",
        "Mindestens 10 Zeichen.",
        "Bitte ein gültiges Geburtsdatum angeben.",
        "Diese Postleitzahl kennen wir nicht.",
        "Bitte geben Sie den Code von Ihrem Formular PTV 11 an.",
        "Bitte bestätigen Sie die Absage- und Ausfallregeln.",
    ):
        assert html.count(message) == 2, message  # at the field and in the summary
    assert "Bitte prüfen Sie 6 Angaben:" in html
    for field in ("first_name", "password", "birth_date", "postcode", "urgency_code"):
        assert f'href="#{field}"' in html and re.search(
            f'class="[^"]*is-invalid[^"]*" id="{field}"', html
        )
    # The summary lists them in the order of the page, with short names for the consents.
    summary, form = html.split('id="form-errors"', 1)[1].split("</ul>", 1)
    linked = re.findall(r'href="#([a-z_0-9]+)"', summary)
    assert linked == sorted(linked, key=lambda f: form.index(f'id="{f}"'))
    assert "Ich akzeptiere" not in summary
    # Nothing entered is lost (a refused password is emptied, an accepted one kept).
    assert 'value="Lindqvist"' in html and 'value="Greta.Lindqvist@example.org"' in html
    assert 'value="99999"' in html and 'value="0-480" checked' in html
    assert "kurz" not in html
    with sessions() as s:
        assert s.scalar(select(func.count(User.id))) == 0


def test_an_accepted_password_stays_filled_in(client):
    response = post_form(client, "/patient/registrieren", first_name="")
    html = response.get_data(as_text=True)
    assert html.count('value="lange-und-sicher-2026"') == 2  # password and its repeat
    assert response.headers["Cache-Control"] == "no-store"


def test_profile_edit_reports_form_and_domain_errors_at_once(client, session, login_as):
    patient = make_patient(session)
    session.commit()
    login_as(patient.user)
    response = post_form(client, "/patient/profil", last_name="", phone="123")
    html = response.get_data(as_text=True)
    assert "Bitte ausfüllen." in html and "Bitte eine gültige Telefonnummer angeben." in html
    assert "Bitte prüfen Sie 2 Angaben:" in html


def test_existing_address_sees_the_same_page(client, session, sessions):
    make_user(session, Role.PATIENT, email="greta.lindqvist@example.org")
    session.commit()
    response = post_form(client, "/patient/registrieren")
    assert response.status_code == 302 and response.location.endswith("/patient/registriert")
    with sessions() as s:
        assert s.scalar(select(func.count(Patient.id))) == 0
        assert s.scalar(select(OutboxMessage.kind)) == "already_registered"


def test_verification_link_needs_a_post(client, sessions):
    post_form(client, "/patient/registrieren")
    link = mail_link(sessions, "verify_email", "/patient/verify/")
    assert client.get(link).status_code == 200
    with sessions() as s:
        assert s.scalar(select(User.email_verified_at)) is None
    response = client.post(link)
    assert response.status_code == 302
    with sessions() as s:
        assert s.scalar(select(User.email_verified_at)) is not None
    assert client.get(link).status_code == 404


def test_bad_verification_link_is_neutral(client):
    response = client.get("/patient/verify/not-a-token")
    assert response.status_code == 404 and "nicht mehr gültig" in response.get_data(as_text=True)


# --- a practice's own link -----------------------------------------------------------------------


def test_practice_link_registration_is_flagged(client, session, sessions):
    practice = make_practice(session, slug="sonne")
    session.commit()
    page = client.get("/p/sonne")
    assert page.status_code == 200 and "/patient/registrieren?praxis=sonne" in page.get_data(
        as_text=True
    )
    assert 'value="sonne"' in client.get("/patient/registrieren?praxis=sonne").get_data(
        as_text=True
    )
    post_form(client, "/patient/registrieren", praxis="sonne")
    with sessions() as s:
        patient = s.scalar(select(Patient))
        entry = s.scalar(select(WaitlistEntry).where(WaitlistEntry.patient_id == patient.id))
        assert entry.practice_id == practice.id and entry.via_practice_link is True
        assert patient.registered_via == RegisteredVia.PRACTICE_LINK


def test_unknown_practice_link_is_404(client):
    assert client.get("/p/gibt-es-nicht").status_code == 404


def test_logged_in_patient_joins_through_the_link(client, session, sessions, login_as):
    practice = make_practice(session, slug="mond")
    patient = make_patient(session)
    session.commit()
    login_as(patient.user)
    assert "/patient/p/mond/beitreten" in client.get("/p/mond").get_data(as_text=True)
    client.post("/patient/p/mond/beitreten")
    with sessions() as s:
        entry = s.scalar(select(WaitlistEntry).where(WaitlistEntry.practice_id == practice.id))
        assert entry.patient_id == patient.id and entry.via_practice_link


# --- access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/patient/",
        "/patient/profil",
        "/patient/praxen",
        "/patient/export.json",
        "/patient/loeschen",
        "/patient/angaben",
        "/patient/pause",
    ],
)
def test_anonymous_is_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and "/auth/login" in response.location


@pytest.mark.parametrize("role", [Role.THERAPIST, Role.SECRETARY, Role.ADMIN])
def test_staff_cannot_use_the_patient_area(client, session, login_as, role):
    user = make_user(session, role)
    session.commit()
    login_as(user)
    assert client.get("/patient/").status_code == 403


# --- dashboard ----------------------------------------------------------------------------------


def test_dashboard_shows_status_lists_and_crisis_notice(client, session, login_as):
    practice = make_practice(session, name="Praxis Abendrot")
    patient = make_patient(session, lists=[practice], pool=True)
    session.commit()
    login_as(patient.user)
    html = client.get("/patient/").get_data(as_text=True)
    assert "Praxis Abendrot" in html and "Regionaler Pool" in html and "0800 111 0 222" in html
    assert (
        '<span class="badge text-bg-success">aktiv</span>' in html
        and "Sie erhalten Angebote." in html
    )


def test_dashboard_asks_unverified_patients_to_verify(client, session, sessions, login_as):
    patient = make_patient(session, user=make_user(session, email_verified_at=None))
    session.commit()
    login_as(patient.user)
    assert "Link erneut senden" in client.get("/patient/").get_data(as_text=True)
    client.post("/patient/bestaetigung")
    with sessions() as s:
        assert s.scalar(select(OutboxMessage.kind)) == "verify_email"


def test_finder_lists_fitting_practices_and_joins(client, session, sessions, login_as):
    practice = make_practice(session, name="Praxis Nah")
    make_therapist(session, practice)
    far = make_practice(session, name="Praxis Fern", lat=52.52, lon=13.40)
    make_therapist(session, far)
    patient = make_patient(session)
    session.commit()
    login_as(patient.user)
    html = client.get("/patient/praxen").get_data(as_text=True)
    assert "Praxis Nah" in html and "Praxis Fern" not in html
    client.post(f"/patient/listen/praxis/{practice.id}", data={"back": "finder"})
    client.post("/patient/listen/pool")
    with sessions() as s:
        assert (
            s.scalar(
                select(func.count(WaitlistEntry.id)).where(WaitlistEntry.patient_id == patient.id)
            )
            == 2
        )


def test_finder_rejects_bad_filters_without_error(client, session, login_as):
    patient = make_patient(session)
    session.commit()
    login_as(patient.user)
    assert client.get("/patient/praxen?distance_km=abc&method=zzz").status_code == 200


def test_leave_a_list(client, session, sessions, login_as):
    practice = make_practice(session)
    patient = make_patient(session, lists=[practice])
    session.commit()
    entry_id = session.scalar(select(WaitlistEntry.id))
    login_as(patient.user)
    client.post(f"/patient/listen/{entry_id}/verlassen")
    with sessions() as s:
        assert s.get(WaitlistEntry, entry_id).status == EntryStatus.REMOVED


def test_leave_someone_elses_list_is_404(client, session, login_as):
    owner = make_patient(session, lists=[make_practice(session)])
    other = make_patient(session)
    session.commit()
    entry_id = session.scalar(select(WaitlistEntry.id).where(WaitlistEntry.patient_id == owner.id))
    login_as(other.user)
    assert client.post(f"/patient/listen/{entry_id}/verlassen").status_code == 404


def test_pause_and_reactivate(client, session, sessions, login_as):
    patient = make_patient(session)
    session.commit()
    login_as(patient.user)
    client.post("/patient/pause", data={"until": "2030-01-31"})
    with sessions() as s:
        p = s.get(Patient, patient.id)
        assert p.status == PatientStatus.PAUSED and p.paused_until == dt.date(2030, 1, 31)
    assert "Suche reaktivieren" in client.get("/patient/").get_data(as_text=True)
    client.post("/patient/reaktivieren")
    with sessions() as s:
        assert s.get(Patient, patient.id).status == PatientStatus.ACTIVE


def test_pause_in_the_past_is_refused_at_the_field(client, session, login_as):
    patient = make_patient(session)
    session.commit()
    login_as(patient.user)
    response = client.post("/patient/pause", data={"until": "2020-01-01"})
    assert (
        response.status_code == 200
        and "Bitte ein Datum in der Zukunft wählen." in response.get_data(as_text=True)
    )


def test_edit_profile_shows_and_saves(client, session, sessions, login_as):
    patient = make_patient(session)
    session.commit()
    login_as(patient.user)
    html = client.get("/patient/profil").get_data(as_text=True)
    assert f'value="{patient.first_name}"' in html and 'value="0-480" checked' in html
    response = post_form(client, "/patient/profil", availability=["3-1080"])
    assert response.status_code == 302
    with sessions() as s:
        p = s.get(Patient, patient.id)
        assert p.first_name == "Greta" and [(w.weekday, w.start_min) for w in p.availability] == [
            (3, 1080)
        ]


def test_edit_intake(client, session, sessions, login_as):
    patient = make_patient(session)
    session.commit()
    login_as(patient.user)
    assert client.get("/patient/angaben").status_code == 200
    client.post(
        "/patient/angaben", data={"problems": ["grief"], "description": "Neu.", "urgency_code": ""}
    )
    with sessions() as s:
        assert s.get(Patient, patient.id).clinical.description == "Neu."


def test_export_downloads_json(client, session, login_as):
    patient = make_patient(session, first_name="Ottilie", lists=[make_practice(session)])
    session.commit()
    login_as(patient.user)
    response = client.get("/patient/export.json")
    assert (
        response.mimetype == "application/json"
        and "attachment" in response.headers["Content-Disposition"]
    )
    data = json.loads(response.get_data(as_text=True))
    assert data["profile"]["first_name"] == "Ottilie" and data["clinical"]["problem_areas"] == [
        "depression"
    ]
    assert len(data["waitlists"]) == 1 and data["account"]["email"] == patient.user.email


def test_delete_account(client, session, sessions, login_as):
    patient = make_patient(session)
    session.commit()
    user_id = patient.user_id
    login_as(patient.user)
    response = client.post("/patient/loeschen", data={"confirm": "y", "password": PASSWORD})
    assert response.status_code == 302 and response.location.endswith("/patient/geloescht")
    with sessions() as s:
        assert s.get(User, user_id) is None
        assert s.get(Patient, patient.id).status == PatientStatus.DELETED
    assert client.get("/patient/").status_code == 302  # logged out


def test_delete_needs_confirmation_and_password(client, session, sessions, login_as):
    patient = make_patient(session)
    session.commit()
    login_as(patient.user)
    assert "Bitte bestätigen Sie die Löschung." in client.post(
        "/patient/loeschen", data={"password": PASSWORD}
    ).get_data(as_text=True)
    assert "Das Passwort ist falsch." in client.post(
        "/patient/loeschen", data={"confirm": "y", "password": "falsch falsch"}
    ).get_data(as_text=True)
    with sessions() as s:
        assert s.get(Patient, patient.id).status == PatientStatus.ACTIVE


# --- check-in answers -----------------------------------------------------------------------------


def _checkin_link(session, patient, now) -> str:
    from ptmatch.domain import accounts

    token = accounts.issue_user_token(
        session, now, patient.user, TokenPurpose.CHECKIN, dt.timedelta(days=400)
    )
    session.commit()
    return links.checkin(token)


def test_checkin_confirmation_is_a_post(client, session, sessions, now):
    patient = make_patient(session, last_confirmed_at=now - dt.timedelta(days=40))
    link = _checkin_link(session, patient, now)
    page = client.get(link)
    assert page.status_code == 200 and 'value="yes"' in page.get_data(as_text=True)
    with sessions() as s:
        assert s.get(Patient, patient.id).last_confirmed_at == now - dt.timedelta(days=40)
    assert client.post(link, data={"answer": "yes"}).status_code == 200
    with sessions() as s:
        assert s.get(Patient, patient.id).last_confirmed_at != now - dt.timedelta(days=40)
    assert client.post(link, data={"answer": "yes"}).status_code == 404


def test_checkin_can_pause(client, session, sessions, now):
    patient = make_patient(session)
    link = _checkin_link(session, patient, now)
    client.post(link, data={"answer": "pause"})
    with sessions() as s:
        assert s.get(Patient, patient.id).status == PatientStatus.PAUSED
