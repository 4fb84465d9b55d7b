"""The audit trail end to end: a practice opening a record shows on the patient's dashboard;
secretariat and admin views never count as practice views; clinical views are audited."""

from __future__ import annotations

from sqlalchemy import select

from ptmatch.models import AuditEvent, Role, User
from tests.factories import make_patient, make_practice, make_secretary, make_therapist, make_user


def test_patient_sees_which_practice_viewed_their_record(client, session, login_as):
    x = make_practice(session, name="Praxis Einblick")
    therapist = make_therapist(session, x)
    patient = make_patient(session, lists=[x])
    secretary = make_secretary(session, [x])
    ids = therapist.user_id, patient.id, patient.user_id, secretary.id
    session.commit()
    login_as(session.get(User, ids[3]))
    assert client.get(f"/sekretariat/anrufer/{ids[1]}").status_code == 200
    login_as(session.get(User, ids[2]))
    assert "Noch keine Praxis hat Ihre Angaben geöffnet" in client.get("/patient/").get_data(
        as_text=True
    )
    login_as(session.get(User, ids[0]))
    assert client.get(f"/praxis/patient/{ids[1]}").status_code == 200
    login_as(session.get(User, ids[2]))
    page = client.get("/patient/").get_data(as_text=True)
    assert "Praxis Einblick" in page and "1 Aufruf durch Praxen" in page


def test_clinical_view_by_a_therapist_is_audited_with_actor_and_practice(client, session, login_as):
    x = make_practice(session)
    therapist = make_therapist(session, x)
    patient = make_patient(session, lists=[x])
    ids = therapist.user_id, patient.id, x.id
    session.commit()
    login_as(session.get(User, ids[0]))
    client.get(f"/praxis/patient/{ids[1]}")
    session.rollback()
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "clinical.viewed"))
    assert (event.actor_id, event.patient_id, event.practice_id) == ids


def test_admin_browsing_writes_no_clinical_view(client, session, login_as):
    make_patient(session)
    admin = make_user(session, Role.ADMIN)
    session.commit()
    login_as(admin)
    for url in ("/admin/", "/admin/konten", "/admin/audit", "/admin/audit.csv"):
        assert client.get(url).status_code == 200
    session.rollback()
    assert (
        session.scalar(select(AuditEvent.id).where(AuditEvent.action == "clinical.viewed")) is None
    )
