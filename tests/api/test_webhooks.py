"""Webhooks: signed bodies with ids and times only, delivered through retries, dead after N,
re-sendable; and the canary over every API response and webhook body."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from ptmatch.domain import api, offers
from ptmatch.domain.errors import InvalidInput, NotFound
from ptmatch.models import DeliveryStatus, Offer, WebhookDelivery
from ptmatch.notifications import webhooks
from ptmatch.scheduler.tasks.webhooks import attendance_due
from tests.api.helpers import Receiver, auth, make_key, verify_signature
from tests.conftest import NOW
from tests.factories import make_network, make_patient, make_slot
from tests.notifications.helpers import make_booking
from tests.notifications.test_canary import MARKER, PATIENT_ID, world  # noqa: F401


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def _post(client, path, **kwargs):
    return client.open(path, method="POST", **kwargs)


def _deliveries(session):
    session.expire_all()
    return session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()


def test_booking_sends_a_signed_webhook_with_ids_and_times_only(session, settings, receiver):
    net = make_network(session)
    endpoint = api.add_endpoint(session, NOW, net.ther_x.user, receiver.url, settings)
    slot = make_slot(session, net.ther_x)
    offers.send_offers(session, NOW, slot, [net.a.id], net.ther_x.user, settings)
    offer = session.scalar(select(Offer).where(Offer.slot_id == slot.id))
    booking = offers.accept_offer(session, NOW, offer, net.a.user, settings)
    session.commit()

    assert webhooks.deliver_due(session, NOW, settings) == 1
    ((headers, body),) = receiver.received
    assert verify_signature(
        endpoint.secret, headers["Ptmatch-Signature"], body, int(NOW.timestamp())
    )
    assert not verify_signature(
        "whsec_wrong", headers["Ptmatch-Signature"], body, int(NOW.timestamp())
    )
    tampered = body.replace(b'"minutes":50', b'"minutes":51')
    assert tampered != body
    assert not verify_signature(
        endpoint.secret, headers["Ptmatch-Signature"], tampered, int(NOW.timestamp())
    )
    payload = json.loads(body)
    assert payload["event"] == "slot.booked"
    assert payload["data"] == {
        "practice_id": net.x.id,
        "slot_id": slot.id,
        "booking_id": booking.id,
        "start_at": slot.start_at.isoformat().replace("+00:00", "Z"),
        "minutes": slot.minutes,
    }
    assert _deliveries(session)[0].status == DeliveryStatus.SENT
    assert webhooks.deliver_due(session, NOW, settings) == 0  # sent once


def test_delivery_survives_the_receiver_being_down_then_dies_and_can_be_resent(
    session, settings, receiver
):
    net = make_network(session)
    api.add_endpoint(session, NOW, net.ther_x.user, receiver.url, settings)
    slot = make_slot(session, net.ther_x)
    offers.cancel_slot(session, NOW, net.ther_x.user, slot)  # no webhook: nothing was booked
    booking = make_booking(session, net.a, net.ther_x, start_at=NOW + dt.timedelta(days=2))
    offers.cancel_slot(session, NOW, net.ther_x.user, booking.slot)
    session.commit()
    (delivery,) = _deliveries(session)
    assert delivery.event == "booking.cancelled"

    receiver.up = False
    now = NOW
    assert webhooks.deliver_due(session, now, settings) == 0
    (delivery,) = _deliveries(session)
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
    assert "503" in delivery.last_error
    assert webhooks.deliver_due(session, now, settings) == 0  # not due again yet
    assert _deliveries(session)[0].attempts == 1

    receiver.up = True
    now = delivery.next_attempt_at
    assert webhooks.deliver_due(session, now, settings) == 1
    assert _deliveries(session)[0].status == DeliveryStatus.SENT
    assert len(receiver.received) == 1

    # A receiver down for good: dead after WEBHOOK_MAX_ATTEMPTS, then re-sent by hand.
    booking2 = make_booking(session, net.a, net.ther_x, start_at=NOW + dt.timedelta(days=3))
    offers.cancel_slot(session, NOW, net.ther_x.user, booking2.slot)
    session.commit()
    receiver.up = False
    for _ in range(settings.WEBHOOK_MAX_ATTEMPTS):
        now += dt.timedelta(days=1)
        webhooks.deliver_due(session, now, settings)
    dead = _deliveries(session)[-1]
    assert dead.status == DeliveryStatus.DEAD
    assert dead.attempts == settings.WEBHOOK_MAX_ATTEMPTS
    receiver.up = True
    api.resend_delivery(session, now, net.ther_x.user, dead.id)
    session.commit()
    assert webhooks.deliver_due(session, now, settings) == 1
    with pytest.raises(NotFound):  # another practice's delivery is not theirs to re-send
        api.resend_delivery(session, now, net.ther_y.user, dead.id)


def test_attendance_due_once_per_booking_after_the_appointment(session, settings, receiver):
    net = make_network(session)
    api.add_endpoint(session, NOW, net.ther_x.user, receiver.url, settings)
    booking = make_booking(session, net.a, net.ther_x, start_at=NOW + dt.timedelta(hours=2))
    session.commit()
    assert attendance_due(session, NOW, settings) == 0  # not over yet
    later = NOW + dt.timedelta(hours=4)
    assert attendance_due(session, later, settings) == 1
    assert attendance_due(session, later, settings) == 0
    (delivery,) = _deliveries(session)
    assert delivery.event == "booking.attendance_due"
    assert json.loads(delivery.body)["data"]["booking_id"] == booking.id


def test_webhook_urls_must_be_https_outside_loopback_development(session, settings):
    net = make_network(session)
    for url in ("http://example.org/hook", "ftp://x/y", "https://user:pw@example.org/", "hook"):
        with pytest.raises(InvalidInput):
            api.add_endpoint(session, NOW, net.ther_x.user, url, settings)
    assert api.add_endpoint(session, NOW, net.ther_x.user, "https://pvs.example/h", settings)


def test_canary_no_personal_data_in_api_responses_or_webhook_bodies(
    world,  # noqa: F811
    receiver,
):
    w = world
    session, client = w.session, w.client
    rival = make_patient(session, lists=[w.practice])
    api.add_endpoint(session, w.now, w.therapist.user, receiver.url, w.settings)
    raw = make_key(session, w.now, w.therapist)
    session.commit()
    bodies = []
    posted = _post(
        client,
        "/api/v1/slots",
        headers=auth(raw),
        json={
            "therapist_id": w.therapist.id,
            "start": (w.now + dt.timedelta(hours=30)).isoformat(),
        },
    )
    assert posted.status_code == 201, posted.get_json()
    slot_id = posted.get_json()["id"]
    offer = session.scalar(
        select(Offer).where(Offer.slot_id == slot_id, Offer.patient_id == w.patient.id)
    )
    assert offer is not None, "the canary patient must be offered the slot"
    offers.accept_offer(session, w.now, offer, w.patient.user, w.settings)
    session.commit()
    booking = make_booking(session, rival, w.therapist, start_at=w.now + dt.timedelta(days=4))
    session.commit()
    for path in ("/api/v1/slots", f"/api/v1/slots/{slot_id}", "/api/v1/bookings"):
        bodies.append(client.get(path, headers=auth(raw)).get_data(as_text=True))
    bodies.append(
        client.delete(f"/api/v1/slots/{booking.slot_id}", headers=auth(raw)).get_data(as_text=True)
    )
    webhooks.deliver_due(session, w.now, w.settings)
    attendance_due(session, w.now + dt.timedelta(days=2), w.settings)
    session.commit()
    webhooks.deliver_due(session, w.now + dt.timedelta(days=2), w.settings)
    bodies += [body.decode() for _headers, body in receiver.received]
    events = {json.loads(body)["event"] for body in bodies[-len(receiver.received) :]}
    assert events == {"slot.booked", "booking.cancelled", "booking.attendance_due"}
    patient = w.patient
    forbidden = [
        MARKER,
        patient.user.email,
        patient.phone,
        "17055501234",
        "1987-03-14",
        "14.03.1987",
        patient.postcode,
        str(PATIENT_ID),
        patient.first_name,
        patient.last_name,
        rival.first_name,
        rival.user.email,
    ]
    text = "\n".join(bodies)
    leaked = [value for value in forbidden if value and value in text]
    assert not leaked, leaked
