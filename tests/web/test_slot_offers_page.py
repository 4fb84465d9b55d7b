"""Issue 13: after an automatic wave the slot page shows each offer with its reasons and its
own deadline; names for patients on the practice's own list, pseudonyms for the pool; the
offers refresh without a reload (a fragment the page polls from a static script)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from ptmatch.domain import access, offers
from ptmatch.models import OfferMode
from tests.conftest import NOW
from tests.factories import make_network, make_patient, make_slot


def test_the_slot_page_shows_offers_with_reasons_names_and_pseudonyms(
    client, login_as, session, settings
):
    net = make_network(
        session,
        a={"last_name": "Listenfrau", "added_at": NOW - dt.timedelta(days=100)},
    )
    pool = make_patient(
        session, pool=True, last_name="Poolmann", added_at=NOW - dt.timedelta(days=200)
    )
    slot = make_slot(session, net.ther_x, offer_mode=OfferMode.AUTO)
    two = dataclasses.replace(settings, WAVE_RULES=((None, 2, 240),))
    offers.send_next_wave(session, NOW, slot, two)
    session.commit()
    login_as(net.ther_x.user)
    page = client.get(f"/termine/{slot.id}").get_data(as_text=True)
    assert "Listenfrau" in page
    assert "Poolmann" not in page and access.pseudonym_of(session, pool.id) in page
    assert "Wartet seit 3 Monat(en)" in page  # a reason
    assert "Antwort bis" in page  # each offer's own deadline
    assert 'src="/static/slot_poll.js"' in page and "<script>" not in page
    fragment = client.get(f"/termine/{slot.id}/angebote").get_data(as_text=True)
    assert "Listenfrau" in fragment and "<html" not in fragment


def test_the_secretariat_sees_no_clinical_reasons(client, login_as, session, settings):
    net = make_network(session, a={"urgent": True})
    slot = make_slot(session, net.ther_x, offer_mode=OfferMode.AUTO)
    offers.send_next_wave(session, NOW, slot, settings)
    session.commit()
    login_as(net.ther_x.user)
    assert "Dringlich (PTV 11)" in client.get(f"/termine/{slot.id}").get_data(as_text=True)
    login_as(net.sec_x)
    assert "Dringlich (PTV 11)" not in client.get(f"/termine/{slot.id}").get_data(as_text=True)
