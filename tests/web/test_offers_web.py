"""Offer pages: the mailed token link (GET shows, POST answers), the neutral page for every bad
token, double submit and back-button resubmit, the patient's own offer page, the booking page,
its .ics and the cancellation."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from ptmatch.domain import offers
from ptmatch.models import Booking, BookingStatus, Modality, Offer, OfferStatus, Role, SlotStatus
from tests.conftest import NOW
from tests.factories import (
    empty_tables_quickly,
    make_network,
    make_offer,
    make_slot,
    make_user,
)

TOKEN = "tok_" + "A" * 40
OTHER_TOKEN = "tok_" + "B" * 40
START = dt.datetime(2026, 11, 26, 13, 0, tzinfo=dt.UTC)  # Thursday 14:00 Berlin


@pytest.fixture(autouse=True)
def _clean_database(engine):
    """The quick cleanup (tests.factories.empty_tables_quickly) instead of TRUNCATE."""
    yield
    empty_tables_quickly(engine)


@pytest.fixture
def world(session):
    """The network; X's slot offered to Alice (patient A) and Bob, both on X's list."""
    net = make_network(
        session,
        x={
            "name": "Praxis Sonnenschein",
            "street": "Rosenweg 7",
            "postcode": "53111",
            "city": "Bonn",
        },
        more_on_x=[{}],
    )
    practice, therapist, (alice, bob) = net.x, net.ther_x, net.on_x
    slot = make_slot(session, therapist, start_at=START)
    offer = make_offer(session, slot, alice, token=TOKEN)
    other = make_offer(session, slot, bob, token=OTHER_TOKEN)
    session.commit()
    return {
        "practice": practice,
        "therapist": therapist,
        "slot": slot,
        "alice": alice,
        "bob": bob,
        "offer": offer,
        "other": other,
    }


def _state(session):
    session.commit()  # a new snapshot: see what the requests committed
    return (
        _fresh(session).scalar(select(func.count(Booking.id))),
        tuple(session.scalars(select(Offer.status).order_by(Offer.id))),
    )


def test_get_shows_the_offer_and_two_post_buttons_and_changes_nothing(client, session, world):
    before = _state(session)
    page = client.get(f"/o/{TOKEN}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Donnerstag, 26. November 2026, 14:00" in html
    assert "Praxis Sonnenschein" in html and "Rosenweg 7" in html
    assert 'method="post"' in html and 'value="accept"' in html and 'value="decline"' in html
    assert page.headers["Cache-Control"] == "no-store"
    assert _state(session) == before


def test_video_offer_shows_the_video_note_not_the_address(client, session, world):
    world["slot"].modality = Modality.VIDEO
    session.commit()
    html = client.get(f"/o/{TOKEN}").get_data(as_text=True)
    assert "Videotermin" in html and "Rosenweg 7" not in html


def _fresh(session):
    """End the test session's transaction (and expire its objects): the next read sees the
    requests' commits, not an old snapshot."""
    session.commit()
    session.expire_all()
    return session


def _neutral(client, url, method="get", **kwargs):
    """Status and the page's main content (the frame around it carries a fresh CSRF token)."""
    response = getattr(client, method)(url, **kwargs)
    html = response.get_data(as_text=True)
    return response.status_code, html[html.index("<main") : html.index("</main>")]


def test_bad_tokens_all_get_the_same_neutral_page(client, session, login_as, world):
    reference = _neutral(client, "/o/" + "Z" * 40)  # unknown
    assert reference[0] == 404 and "nicht (mehr) verfügbar" in reference[1]
    assert _neutral(client, "/o/x") == reference  # malformed
    assert _neutral(client, "/o/" + "%00" * 30) == reference
    world["offer"].expires_at = NOW - dt.timedelta(minutes=1)  # expired (not swept yet)
    session.commit()
    before = _state(session)
    assert _neutral(client, f"/o/{TOKEN}") == reference
    assert _neutral(client, f"/o/{TOKEN}", "post", data={"answer": "accept"}) == reference
    session.commit()  # end the read: each token page writes its rate counter (issue 16)
    stranger = make_user(session, Role.PATIENT)
    session.commit()
    login_as(stranger)  # foreign: someone else's link while logged in
    assert _neutral(client, f"/o/{OTHER_TOKEN}") == reference
    assert _neutral(client, f"/o/{OTHER_TOKEN}", "post", data={"answer": "accept"}) == reference
    assert _state(session) == before


def test_accept_by_token_books(client, session, world):
    response = client.post(f"/o/{TOKEN}", data={"answer": "accept"})
    assert response.status_code == 200
    assert "Ihr Termin ist gebucht" in response.get_data(as_text=True)
    session.expire_all()
    booking = _fresh(session).scalar(select(Booking))
    assert booking.patient_id == world["alice"].id and booking.slot.status == SlotStatus.BOOKED
    assert session.get(Offer, world["other"].id).status == OfferStatus.TAKEN


def test_double_submit_books_once_and_the_second_shows_the_booking(client, session, world):
    assert client.post(f"/o/{TOKEN}", data={"answer": "accept"}).status_code == 200
    again = client.post(f"/o/{TOKEN}", data={"answer": "accept"})
    assert again.status_code == 200 and "Ihr Termin ist gebucht" in again.get_data(as_text=True)
    assert _fresh(session).scalar(select(func.count(Booking.id))) == 1
    # Opening the mailed link again later: her booking, not "no longer available".
    assert "Ihr Termin ist gebucht" in client.get(f"/o/{TOKEN}").get_data(as_text=True)


def test_back_button_resubmit_after_decline_changes_nothing(client, session, world):
    response = client.post(f"/o/{TOKEN}", data={"answer": "decline"})
    assert response.status_code == 200 and "abgelehnt" in response.get_data(as_text=True)
    before = _state(session)
    assert client.post(f"/o/{TOKEN}", data={"answer": "accept"}).status_code == 404
    assert _state(session) == before and before[0] == 0


def test_loser_sees_taken_and_keeps_their_place(client, session, world):
    client.post(f"/o/{TOKEN}", data={"answer": "accept"})
    response = client.post(f"/o/{OTHER_TOKEN}", data={"answer": "accept"})
    assert response.status_code == 200
    assert "schon vergeben" in response.get_data(as_text=True)
    assert _fresh(session).scalar(select(func.count(Booking.id))) == 1


def test_accept_after_the_slot_was_cancelled(client, session, world):
    offers.cancel_slot(session, NOW, world["therapist"].user, world["slot"])
    session.commit()
    assert client.post(f"/o/{TOKEN}", data={"answer": "accept"}).status_code == 404
    assert _fresh(session).scalar(select(func.count(Booking.id))) == 0


def test_post_without_csrf_token_is_refused(client, session, world):
    response = client.post(f"/o/{TOKEN}", data={"answer": "accept"}, csrf=False)
    assert response.status_code == 400
    assert _fresh(session).scalar(select(func.count(Booking.id))) == 0


def test_unknown_answer_changes_nothing(client, session, world):
    before = _state(session)
    assert client.post(f"/o/{TOKEN}", data={"answer": "maybe"}).status_code == 200
    assert _state(session) == before


# --- the patient's own pages --------------------------------------------------------------------


def test_patient_offer_page_is_own_only(client, session, login_as, world):
    login_as(world["alice"].user)
    assert client.get(f"/patient/angebot/{world['offer'].id}").status_code == 200
    assert client.get(f"/patient/angebot/{world['other'].id}").status_code == 404
    login_as(world["therapist"].user)
    assert client.get(f"/patient/angebot/{world['offer'].id}").status_code == 403


def test_patient_offer_page_needs_login(client, world):
    response = client.get(f"/patient/angebot/{world['offer'].id}")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/patient/angebot/{offer}"),
        ("get", "/patient/termin/{offer}"),
        ("get", "/patient/termin/{offer}.ics"),
        ("post", "/patient/termin/{offer}/absagen"),
    ],
)
def test_every_page_but_the_token_link_is_for_patients_only(client, login_as, world, method, path):
    """Deny by default (the blueprint's role gate), before any lookup: the login for nobody,
    403 for staff; the token link stays public."""
    url = path.format(offer=world["offer"].id)
    send = getattr(client, method)
    response = send(url)
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    login_as(world["therapist"].user)
    assert send(url).status_code == 403
    with client.session_transaction() as cookie:
        cookie.clear()
    assert client.get(f"/o/{TOKEN}").status_code == 200


def test_accept_from_the_dashboard_leads_to_the_booking(client, session, login_as, world):
    login_as(world["alice"].user)
    response = client.post(f"/patient/angebot/{world['offer'].id}", data={"answer": "accept"})
    booking = _fresh(session).scalar(select(Booking))
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/patient/termin/{booking.id}")
    html = client.get(f"/patient/termin/{booking.id}").get_data(as_text=True)
    assert "Klingel 2. OG" in html  # the practice's info text
    assert "24 Stunden vorher absagen." in html  # its cancellation rules
    assert f"/patient/termin/{booking.id}.ics" in html


def test_taken_offer_on_the_dashboard_says_so(client, session, login_as, world, settings):
    login_as(world["bob"].user)
    offers.accept_offer(session, NOW, world["offer"], world["alice"].user, settings=settings)
    session.commit()
    response = client.post(
        f"/patient/angebot/{world['other'].id}", data={"answer": "accept"}, follow_redirects=True
    )
    assert "schon vergeben" in response.get_data(as_text=True)


def test_booking_page_video_details_and_ics(client, session, login_as, world, settings):
    world["slot"].modality = Modality.VIDEO
    booking = offers.accept_offer(
        session, NOW, world["offer"], world["alice"].user, settings=settings
    )
    session.commit()
    login_as(world["alice"].user)
    html = client.get(f"/patient/termin/{booking.id}").get_data(as_text=True)
    assert f"https://video.test/{world['slot'].id}" in html
    ics = client.get(f"/patient/termin/{booking.id}.ics")
    assert ics.status_code == 200 and ics.mimetype == "text/calendar"
    assert (
        b"BEGIN:VCALENDAR" in ics.data and b"DTSTART;TZID=Europe/Berlin:20261126T140000" in ics.data
    )
    login_as(world["bob"].user)
    assert client.get(f"/patient/termin/{booking.id}").status_code == 404
    assert client.get(f"/patient/termin/{booking.id}.ics").status_code == 404


def test_patient_cancels_within_the_notice(client, session, login_as, world, settings):
    booking = offers.accept_offer(
        session, NOW, world["offer"], world["alice"].user, settings=settings
    )
    session.commit()
    login_as(world["alice"].user)
    response = client.post(f"/patient/termin/{booking.id}/absagen")
    assert response.status_code == 302
    assert _fresh(session).get(Booking, booking.id).status == BookingStatus.CANCELLED


def test_patient_cannot_cancel_after_the_notice(client, session, login_as, clock, world, settings):
    booking = offers.accept_offer(
        session, NOW, world["offer"], world["alice"].user, settings=settings
    )
    session.commit()
    clock.set(START - dt.timedelta(hours=2))
    login_as(world["alice"].user)
    html = client.post(f"/patient/termin/{booking.id}/absagen", follow_redirects=True).get_data(
        as_text=True
    )
    assert "Absagefrist" in html
    assert _fresh(session).get(Booking, booking.id).status == BookingStatus.CONFIRMED
