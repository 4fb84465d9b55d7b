"""Issue 16: codes in any digits, NFC passwords, UTS #39 skeletons, exponential delays."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pyotp
import pytest

from ptmatch.config import Settings
from ptmatch.domain import accounts, textnorm, throttle
from ptmatch.domain.errors import InvalidInput
from ptmatch.models import Role
from tests.factories import make_user


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("123456", ("totp", "123456")),
        (" 123 456 ", ("totp", "123456")),
        ("１２３４５６", ("totp", "123456")),
        ("٢١٦٣٨٠", ("totp", "216380")),
        ("۲۱۶۳۸۰", ("totp", "216380")),
        ("²¹⁶³⁸⁰", ("totp", "216380")),
        ("ABCDE-12345", ("recovery", "abcde-12345")),
        ("abcde12345", ("recovery", "abcde12345")),
    ],
)
def test_codes_become_ascii(raw, expected):
    assert textnorm.normalise_code(raw) == expected


@pytest.mark.parametrize("raw", ["", "12345", "1234567", "12345x", "ⅠⅡⅢⅣⅤⅥ", "½½½½½½", "\x00" * 6])
def test_anything_else_is_refused_with_the_field_message(raw):
    with pytest.raises(InvalidInput) as err:
        textnorm.normalise_code(raw)
    assert err.value.field == "code"


def test_matching_step_never_raises_on_odd_digits(now):
    for raw in ["１２３４５６", "٢١٦٣٨٠", "²¹⁶³⁸⁰", "𝟏𝟐𝟑𝟒𝟓𝟔", "\udcff" * 6]:
        accounts._matching_step(pyotp.random_base32(), raw, now)  # no TypeError


@pytest.mark.parametrize(
    "a, b",
    [
        ("anna@example.org", "\u0430nna@example.org"),  # Cyrillic а
        ("paypal@example.org", "p\u0430yp\u0430l@example.org"),
        ("olaf@example.org", "\u03bflaf@example.org"),  # Greek ο
        ("jan@example.org", "ｊａｎ@example.org"),  # full-width
    ],
)
def test_look_alikes_share_a_skeleton(a, b):
    assert textnorm.skeleton(a) == textnorm.skeleton(b)


def test_different_addresses_keep_different_skeletons():
    assert textnorm.skeleton("anna@example.org") != textnorm.skeleton("anne@example.org")
    assert textnorm.skeleton("müller@example.org") != textnorm.skeleton("muller@example.org")


def test_create_user_refuses_a_look_alike_and_a_long_local_part(session, now):
    make_user(session, Role.PATIENT, email="olaf@example.org")
    with pytest.raises(InvalidInput, match="Verwechseln"):
        accounts.create_user(
            session, now, email="\u03bflaf@example.org", password=None, role=Role.ADMIN
        )
    with pytest.raises(InvalidInput, match="64 Zeichen"):
        accounts.create_user(
            session, now, email="x" * 65 + "@example.org", password=None, role=Role.ADMIN
        )
    assert accounts.create_user(
        session, now, email="x" * 64 + "@example.org", password=None, role=Role.ADMIN
    )


def test_the_delay_doubles_up_to_the_maximum():
    s = dataclasses.replace(Settings(), THROTTLE_BASE_SECONDS=15, THROTTLE_MAX_SECONDS=900)
    delays = [throttle.delay_after(n, 5, s) for n in range(3, 14)]
    seconds = [d.total_seconds() if d else 0 for d in delays]
    assert seconds == [0, 0, 15, 30, 60, 120, 240, 480, 900, 900, 900]


def test_a_rate_counter_window_restarts(session, now):
    hits = [throttle.count_request(session, now, "k", "192.0.2.1", 3, 60) for _ in range(4)]
    assert hits == [True, True, True, False]
    later = now + dt.timedelta(seconds=60)
    assert throttle.count_request(session, later, "k", "192.0.2.1", 3, 60)
    assert throttle.count_request(session, later, "k", "192.0.2.2", 3, 60)
