"""The same TOTP code sent by 10 threads at once: exactly one succeeds (real commits).

Each thread ends its read transaction before the barrier: on SQLite every transaction is
BEGIN IMMEDIATE, so a thread holding one open at the barrier would block the others.
"""

from __future__ import annotations

import threading

import pyotp

from ptmatch.domain import accounts
from ptmatch.models import Role, User
from tests.factories import make_user


def test_same_code_from_ten_threads_wins_once(sessions, now):
    with sessions() as s:
        user = make_user(s, Role.THERAPIST)
        s.commit()
        user_id, code = user.id, pyotp.TOTP(user.totp_secret).at(now)

    barrier = threading.Barrier(10)
    results, errors = [], []

    def attempt():
        try:
            with sessions() as s:
                u = s.get(User, user_id)
                s.commit()
                barrier.wait(timeout=30)
                ok = accounts.verify_totp(s, now, u, code)
                s.commit()
                results.append(ok)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [False] * 9 + [True]


def test_same_recovery_code_from_ten_threads_wins_once(sessions, now):
    with sessions() as s:
        user = make_user(s, Role.THERAPIST)
        codes = accounts.new_recovery_codes(s, user)
        s.commit()
        user_id = user.id

    barrier = threading.Barrier(10)
    results = []

    def attempt():
        with sessions() as s:
            u = s.get(User, user_id)
            s.commit()
            barrier.wait(timeout=30)
            results.append(accounts.use_recovery_code(s, now, u, codes[3]))
            s.commit()

    threads = [threading.Thread(target=attempt) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 9 + [True]
