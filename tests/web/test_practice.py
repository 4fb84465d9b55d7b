"""Practice area in the browser: sign-up, approval and TOTP gate, workbench, pool, patient
file and its actions, both profiles, the registration QR code."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from ptmatch.catalog import METHODS, PROBLEM_AREAS
from ptmatch.domain import access
from ptmatch.models import (
    AuditEvent,
    ClinicalNote,
    EntryStatus,
    Practice,
    RemovalReason,
    Role,
    Therapist,
    User,
    WaitlistEntry,
)
from tests.factories import PASSWORD, make_patient, make_practice, make_therapist, make_user


def _entry_id(sessions, patient_id: int, practice_id: int) -> int:
    with sessions() as s:
        return s.scalar(
            select(WaitlistEntry.id).where(
                WaitlistEntry.patient_id == patient_id, WaitlistEntry.practice_id == practice_id
            )
        )


# --- sign-up ----------------------------------------------------------------------------------

SIGNUP = dict(
    display_name="Dr. Neu",
    title="Dr.",
    gender="f",
    email="neu@praxis.example",
    password=PASSWORD,
    password_repeat=PASSWORD,
    approbation="PP, Approbation 2019, LPA Köln",
    lanr="123456789",
)


def test_signup_page_is_public(client):
    resp = client.get("/praxis/registrieren")
    assert resp.status_code == 200
    assert "Approbation" in resp.get_data(as_text=True)


def test_signup_creates_a_pending_account(client, sessions):
    resp = client.post("/praxis/registrieren", data=SIGNUP)
    assert resp.status_code == 200
    assert "Antrag eingegangen" in resp.get_data(as_text=True)
    with sessions() as s:
        therapist = s.scalar(select(Therapist))
        assert therapist.approved_at is None and therapist.lanr == "123456789"
        assert s.get(User, therapist.user_id).totp_confirmed_at is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lanr": "12345"}, "Die LANR hat genau 9 Ziffern."),
        ({"password_repeat": "something else entirely"}, "Die Passwörter stimmen nicht überein."),
        ({"approbation": ""}, "Bitte ausfüllen."),
        ({"password": "kurz", "password_repeat": "kurz"}, "Mindestens 10 Zeichen."),
    ],
)
def test_signup_errors_show_at_the_field(client, sessions, changes, message):
    resp = client.post("/praxis/registrieren", data={**SIGNUP, **changes})
    assert resp.status_code == 200
    assert message in resp.get_data(as_text=True)
    with sessions() as s:
        assert s.scalar(select(User.id)) is None


# --- gates ------------------------------------------------------------------------------------

GATED = [
    "/praxis/",
    "/praxis/pool",
    "/praxis/profil",
    "/praxis/praxisprofil",
    "/praxis/praxisprofil/qr",
    "/praxis/patient/1",
]


@pytest.mark.parametrize("path", GATED)
def test_unapproved_therapist_sees_only_the_waiting_page(client, session, login_as, path):
    therapist = make_therapist(session, approved_at=None)
    session.commit()
    login_as(therapist.user)
    resp = client.get(path)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/praxis/freigabe")
    page = client.get("/praxis/freigabe").get_data(as_text=True)
    assert "wartet auf die Freigabe" in page


def test_unapproved_therapist_cannot_act(client, session, login_as):
    therapist = make_therapist(session, approved_at=None)
    patient = make_patient(session, lists=[therapist.practice])
    session.commit()
    login_as(therapist.user)
    resp = client.post(f"/praxis/patient/{patient.id}/notiz", data={"text": "x"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/praxis/freigabe")


def test_approved_therapist_without_practice_waits_for_assignment(client, session, login_as):
    therapist = make_therapist(session, practice=False)
    session.commit()
    login_as(therapist.user)
    assert client.get("/praxis/").headers["Location"].endswith("/praxis/freigabe")
    assert "keiner Praxis zugeordnet" in client.get("/praxis/freigabe").get_data(as_text=True)


def test_therapist_without_totp_is_not_logged_in(client, session, login_as):
    therapist = make_therapist(session, user=make_user(session, Role.THERAPIST, totp=False))
    session.commit()
    login_as(therapist.user)
    resp = client.get("/praxis/")
    assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"]


def test_active_therapist_is_sent_on_from_the_waiting_page(client, session, login_as):
    therapist = make_therapist(session)
    session.commit()
    login_as(therapist.user)
    assert client.get("/praxis/freigabe").headers["Location"].endswith("/praxis/")


@pytest.mark.parametrize("role", [Role.PATIENT, Role.SECRETARY, Role.ADMIN])
def test_other_roles_are_refused(client, session, login_as, role):
    user = make_user(session, role)
    session.commit()
    login_as(user)
    assert client.get("/praxis/").status_code == 403


def test_anonymous_goes_to_login(client):
    resp = client.get("/praxis/")
    assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"]


# --- workbench and pool ---------------------------------------------------------------------------


def test_workbench_lists_own_patients_with_filters(client, session, login_as):
    therapist = make_therapist(session)
    anna = make_patient(
        session, lists=[therapist.practice], first_name="Annabell", description="Schlafprobleme"
    )
    make_patient(
        session, lists=[therapist.practice], first_name="Bertram", description="Prüfungsangst"
    )
    make_patient(session, lists=[make_practice(session)], first_name="Fremdling")
    session.commit()
    login_as(therapist.user)
    page = client.get("/praxis/").get_data(as_text=True)
    assert "Annabell" in page and "Bertram" in page and "Fremdling" not in page
    page = client.get("/praxis/?q=schlaf").get_data(as_text=True)
    assert "Annabell" in page and "Bertram" not in page
    assert f"/praxis/patient/{anna.id}" in page


def test_workbench_problem_and_sort_filters_from_the_query_string(client, session, login_as):
    therapist = make_therapist(session)
    make_patient(session, lists=[therapist.practice], first_name="Annabell", problems=("grief",))
    make_patient(
        session, lists=[therapist.practice], first_name="Bertram", problems=("anxiety", "sleep")
    )
    session.commit()
    login_as(therapist.user)
    page = client.get("/praxis/?problems=anxiety&problems=ocd&sort=priority").get_data(as_text=True)
    assert "Bertram" in page and "Annabell" not in page


def test_bad_filter_values_show_errors_not_a_500(client, session, login_as):
    therapist = make_therapist(session)
    make_patient(session, lists=[therapist.practice], first_name="Annabell")
    session.commit()
    login_as(therapist.user)
    resp = client.get("/praxis/?age_min=abc&waiting_from=gestern&problems=aliens&page=x")
    assert resp.status_code == 200
    assert "Annabell" in resp.get_data(as_text=True)


def test_workbench_pages(client, session, login_as):
    therapist = make_therapist(session)
    for i in range(27):
        make_patient(
            session,
            lists=[therapist.practice],
            first_name=f"Person{i:02d}",
            added_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=i),
        )
    session.commit()
    login_as(therapist.user)
    first = client.get("/praxis/?sort=waiting").get_data(as_text=True)
    second = client.get("/praxis/?sort=waiting&page=2").get_data(as_text=True)
    assert "Person00" in first and "Person24" in first and "Person25" not in first
    assert "Person25" in second and "Person26" in second and "Person00" not in second
    assert "page=2" in first and "sort=waiting" in first


def test_pool_rows_show_no_name_email_phone_or_birth_date(client, session, login_as):
    therapist = make_therapist(session)
    user = make_user(session, Role.PATIENT, email="zacharias.quasthoff@example.org")
    patient = make_patient(
        session,
        user=user,
        pool=True,
        first_name="Zacharias",
        last_name="Quasthoff",
        phone="+4915112345678",
        birth_date=dt.date(1983, 7, 19),
        problems=("grief",),
    )
    session.commit()
    login_as(therapist.user)
    html = client.get("/praxis/pool").get_data(as_text=True)
    assert access.pseudonym_of(session, patient.id) in html
    assert "Trauer" in html  # the problem area is part of the summary
    for secret in (
        "Zacharias",
        "Quasthoff",
        "zacharias.quasthoff",
        "example.org",
        "+4915112345678",
        "15112345678",
        "19.7.1983",
        "1983-07-19",
        "1983",
        f"/praxis/patient/{patient.id}",
    ):
        assert secret not in html


def test_pool_tab_explains_when_the_practice_takes_no_pool_patients(client, session, login_as):
    therapist = make_therapist(session, make_practice(session, accepts_pool=False))
    make_patient(session, pool=True)
    session.commit()
    login_as(therapist.user)
    assert "nimmt keine Patient:innen aus dem regionalen Pool" in client.get(
        "/praxis/pool"
    ).get_data(as_text=True)


# --- patient file ---------------------------------------------------------------------------------


def test_therapist_of_a_cannot_open_a_patient_waiting_only_at_b(client, session, login_as):
    therapist = make_therapist(session)
    patient = make_patient(session, lists=[make_practice(session)])
    session.commit()
    login_as(therapist.user)
    assert client.get(f"/praxis/patient/{patient.id}").status_code == 404
    assert client.post(f"/praxis/patient/{patient.id}/notiz", data={"text": "x"}).status_code == 404


def test_pool_patient_file_is_forbidden(client, session, login_as):
    therapist = make_therapist(session)
    patient = make_patient(session, pool=True)
    session.commit()
    login_as(therapist.user)
    assert client.get(f"/praxis/patient/{patient.id}").status_code == 403


def test_unknown_patient_is_not_found(client, session, login_as):
    therapist = make_therapist(session)
    session.commit()
    login_as(therapist.user)
    assert client.get("/praxis/patient/987654").status_code == 404


def test_patient_file_shows_the_full_record_and_is_audited(client, session, sessions, login_as):
    therapist = make_therapist(session)
    patient = make_patient(
        session,
        lists=[therapist.practice],
        first_name="Annabell",
        phone="+4917099988877",
        description="Seit dem Umzug gedrückte Stimmung",
        urgent=True,
    )
    session.commit()
    login_as(therapist.user)
    html = client.get(f"/praxis/patient/{patient.id}").get_data(as_text=True)
    for shown in (
        "Annabell",
        "+4917099988877",
        "Seit dem Umzug gedrückte Stimmung",
        "A1B2C3",
        "Depression",
        patient.user.email,
    ):
        assert shown in html
    with sessions() as s:
        viewed = s.scalar(select(AuditEvent).where(AuditEvent.action == "clinical.viewed"))
        assert viewed.patient_id == patient.id and viewed.actor_id == therapist.user_id


def test_set_priority_from_the_patient_file(client, session, sessions, login_as):
    therapist = make_therapist(session)
    patient = make_patient(session, lists=[therapist.practice])
    session.commit()
    login_as(therapist.user)
    entry_id = _entry_id(sessions, patient.id, therapist.practice_id)
    resp = client.post(f"/praxis/eintrag/{entry_id}/prioritaet", data={"priority": "2"})
    assert resp.status_code == 302
    with sessions() as s:
        assert s.get(WaitlistEntry, entry_id).priority == 2


def test_add_note_and_see_it(client, session, sessions, login_as):
    therapist = make_therapist(session)
    patient = make_patient(session, lists=[therapist.practice])
    session.commit()
    login_as(therapist.user)
    resp = client.post(
        f"/praxis/patient/{patient.id}/notiz",
        data={"text": "Rückruf vereinbart"},
        follow_redirects=True,
    )
    assert "Rückruf vereinbart" in resp.get_data(as_text=True)
    with sessions() as s:
        assert s.scalar(select(ClinicalNote.practice_id)) == therapist.practice_id


def test_empty_note_shows_an_error(client, session, sessions, login_as):
    therapist = make_therapist(session)
    patient = make_patient(session, lists=[therapist.practice])
    session.commit()
    login_as(therapist.user)
    resp = client.post(f"/praxis/patient/{patient.id}/notiz", data={"text": ""})
    assert resp.status_code == 200 and "Bitte ausfüllen." in resp.get_data(as_text=True)
    with sessions() as s:
        assert s.scalar(select(ClinicalNote.id)) is None


def test_refer_from_the_patient_file_keeps_the_history(client, session, sessions, login_as):
    therapist = make_therapist(session)
    target = make_practice(session, name="Praxis Ziel")
    patient = make_patient(session, lists=[therapist.practice])
    session.commit()
    login_as(therapist.user)
    entry_id = _entry_id(sessions, patient.id, therapist.practice_id)
    assert "Praxis Ziel" in client.get(f"/praxis/patient/{patient.id}").get_data(as_text=True)
    resp = client.post(f"/praxis/eintrag/{entry_id}/ueberweisen", data={"target": str(target.id)})
    assert resp.status_code == 302
    with sessions() as s:
        old = s.get(WaitlistEntry, entry_id)
        assert old.status == EntryStatus.REMOVED and old.removed_reason == RemovalReason.REFERRED
        assert old.referred_to_id == target.id
        assert (
            s.scalar(
                select(WaitlistEntry.status).where(
                    WaitlistEntry.patient_id == patient.id, WaitlistEntry.practice_id == target.id
                )
            )
            == EntryStatus.ACTIVE
        )
    assert client.get(f"/praxis/patient/{patient.id}").status_code == 404  # no longer ours


def test_refer_to_own_practice_shows_an_error(client, session, sessions, login_as):
    therapist = make_therapist(session)
    patient = make_patient(session, lists=[therapist.practice])
    session.commit()
    login_as(therapist.user)
    entry_id = _entry_id(sessions, patient.id, therapist.practice_id)
    resp = client.post(
        f"/praxis/eintrag/{entry_id}/ueberweisen", data={"target": str(therapist.practice_id)}
    )
    assert resp.status_code == 200
    with sessions() as s:
        assert s.get(WaitlistEntry, entry_id).status == EntryStatus.ACTIVE


def test_remove_from_the_patient_file_keeps_the_entry(client, session, sessions, login_as):
    therapist = make_therapist(session)
    patient = make_patient(session, lists=[therapist.practice])
    session.commit()
    login_as(therapist.user)
    entry_id = _entry_id(sessions, patient.id, therapist.practice_id)
    resp = client.post(f"/praxis/eintrag/{entry_id}/entfernen", data={"reason": "no_fit"})
    assert resp.status_code == 302
    with sessions() as s:
        entry = s.get(WaitlistEntry, entry_id)
        assert entry.status == EntryStatus.REMOVED
        assert entry.removed_reason == RemovalReason.REMOVED_BY_PRACTICE


def test_actions_on_another_practice_entry_are_not_found(client, session, sessions, login_as):
    therapist = make_therapist(session)
    other = make_practice(session)
    patient = make_patient(session, lists=[other])
    session.commit()
    login_as(therapist.user)
    entry_id = _entry_id(sessions, patient.id, other.id)
    for path, data in (
        (f"/praxis/eintrag/{entry_id}/entfernen", {"reason": "no_fit"}),
        (f"/praxis/eintrag/{entry_id}/prioritaet", {"priority": "1"}),
        (f"/praxis/eintrag/{entry_id}/ueberweisen", {"target": str(therapist.practice_id)}),
    ):
        assert client.post(path, data=data).status_code == 404
    with sessions() as s:
        assert s.get(WaitlistEntry, entry_id).status == EntryStatus.ACTIVE


# --- profiles -------------------------------------------------------------------------------------

PROFILE = dict(
    title="Dr.",
    gender="m",
    methods=["vt", "emdr"],
    specialties=["trauma"],
    exclusions=["psychosis"],
    populations=["adults"],
    languages=["de", "en"],
    insurances=["gkv", "pkv"],
    offers_in_person="y",
    offers_video="y",
    session_minutes="50",
    buffer_minutes="10",
    switch_buffer_minutes="15",
)


def test_profile_page_shows_catalogue_checkboxes(client, session, login_as):
    therapist = make_therapist(session, specialties=("trauma",))
    session.commit()
    login_as(therapist.user)
    html = client.get("/praxis/profil").get_data(as_text=True)
    assert 'type="checkbox"' in html and "Schematherapie" in html
    assert re.search(
        r'name="specialties"[^>]*value="trauma"[^>]*checked|checked[^>]*name="specialties"[^>]*value="trauma"'
        r'|name="specialties" type="checkbox" value="trauma"',
        html,
    )


def test_profile_update(client, session, sessions, login_as):
    therapist = make_therapist(session)
    session.commit()
    login_as(therapist.user)
    resp = client.post("/praxis/profil", data=PROFILE)
    assert resp.status_code == 302
    with sessions() as s:
        fresh = s.get(Therapist, therapist.id)
        assert fresh.methods_mask == METHODS.to_mask(["vt", "emdr"])
        assert fresh.exclusions_mask == PROBLEM_AREAS.to_mask(["psychosis"])
        assert fresh.offers_group is False and fresh.gender == "m"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"session_minutes": "200"}, "Erlaubt sind 25 bis 120 Minuten."),
        ({"buffer_minutes": "90"}, "Erlaubt sind 0 bis 60 Minuten."),
        (
            {"offers_in_person": "", "offers_video": ""},
            "Bitte Präsenz, Video oder beides anbieten.",
        ),
        (
            {"exclusions": ["trauma"]},
            "Ein Bereich kann nicht zugleich Schwerpunkt und Ausschluss sein.",
        ),
        ({"session_minutes": "fünfzig"}, "session_minutes"),
        ({"methods": ["voodoo"]}, "methods"),
    ],
)
def test_profile_errors_show_and_change_nothing(
    client, session, sessions, login_as, changes, message
):
    therapist = make_therapist(session)
    session.commit()
    login_as(therapist.user)
    data = {k: v for k, v in {**PROFILE, **changes}.items() if v != ""}
    resp = client.post("/praxis/profil", data=data)
    assert resp.status_code == 200
    assert message in resp.get_data(as_text=True)
    with sessions() as s:
        assert s.get(Therapist, therapist.id).gender == "f"


def test_practice_profile_shows_link_and_qr_code(client, session, login_as):
    therapist = make_therapist(session, make_practice(session, slug="praxis-sommer"))
    session.commit()
    login_as(therapist.user)
    html = client.get("/praxis/praxisprofil").get_data(as_text=True)
    assert "https://ptmatch.test/p/praxis-sommer" in html
    assert "<svg" in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)  # no inline script (CSP)


def test_practice_profile_update(client, session, sessions, login_as):
    therapist = make_therapist(session)
    session.commit()
    login_as(therapist.user)
    resp = client.post(
        "/praxis/praxisprofil",
        data={
            "name": "Praxis Neu",
            "street": "Weg 1",
            "postcode": "53111",
            "city": "Bonn",
            "phone": "+49 228 1",
            "website": "https://neu.example",
            "booking_info": "2. OG",
            "cancellation_policy": "24 h",
            "video_link_template": "https://video.example/{slot_id}",
        },
    )
    assert resp.status_code == 302
    with sessions() as s:
        practice = s.get(Practice, therapist.practice_id)
        assert practice.name == "Praxis Neu" and practice.accepts_pool is False


def test_practice_profile_error_shows_at_the_field(client, session, sessions, login_as):
    therapist = make_therapist(session)
    session.commit()
    login_as(therapist.user)
    resp = client.post(
        "/praxis/praxisprofil", data={"name": "Praxis", "website": "javascript:alert(1)"}
    )
    assert resp.status_code == 200
    assert "Bitte eine Adresse mit https:// angeben." in resp.get_data(as_text=True)
    with sessions() as s:
        assert s.get(Practice, therapist.practice_id).name != "Praxis"


def test_qr_code_downloads_and_prints(client, session, login_as):
    therapist = make_therapist(session)
    session.commit()
    login_as(therapist.user)
    resp = client.get("/praxis/praxisprofil/qr.svg")
    assert resp.status_code == 200 and resp.mimetype == "image/svg+xml"
    assert resp.get_data(as_text=True).lstrip().startswith("<?xml") or "<svg" in resp.get_data(
        as_text=True
    )
    html = client.get("/praxis/praxisprofil/qr").get_data(as_text=True)
    assert therapist.practice.name in html and "<svg" in html


def test_nav_has_the_therapist_links(client, session, login_as):
    therapist = make_therapist(session)
    session.commit()
    login_as(therapist.user)
    html = client.get("/praxis/").get_data(as_text=True)
    for href in (
        'href="/praxis/"',
        'href="/praxis/pool"',
        'href="/praxis/profil"',
        'href="/praxis/praxisprofil"',
    ):
        assert href in html
