"""Issue 16: 20 wrong codes for one pending login from 20 threads at once: at most
TOTP_ATTEMPTS are evaluated (the attempt is reserved by a conditional UPDATE first)."""

from __future__ import annotations

import dataclasses
import threading

import pyotp

from ptmatch.domain import accounts
from ptmatch.domain.errors import LoginRestart
from ptmatch.models import Role, User
from tests.factories import make_user


def test_parallel_wrong_codes_evaluate_at_most_the_limit(sessions, settings, now, monkeypatch):
    # Throttles and lockout far away: the attempt limit alone is under test.
    settings = dataclasses.replace(
        settings,
        THROTTLE_PAIR_FREE_FAILURES=1000,
        THROTTLE_CLIENT_FREE_FAILURES=1000,
        LOCKOUT_FAILURES=1000,
    )
    with sessions() as s:
        user = make_user(s, Role.THERAPIST)
        user.login_generation = 7
        s.commit()
        user_id, secret = user.id, user.totp_secret
    valid = {pyotp.TOTP(secret).at(now, counter_offset=o) for o in (-1, 0, 1)}
    wrong = [c for c in (f"{i:06d}" for i in range(30)) if c not in valid][:20]
    evaluated = []
    real_verify = accounts.verify_totp
    monkeypatch.setattr(
        accounts, "verify_totp", lambda *a, **k: evaluated.append(1) or real_verify(*a, **k)
    )
    barrier = threading.Barrier(len(wrong))
    outcomes, errors = [], []

    def attempt(code: str) -> None:
        try:
            with sessions() as s:
                u = s.get(User, user_id)
                s.commit()
                barrier.wait(timeout=30)
                try:
                    outcomes.append(accounts.check_second_factor(s, now, u, 7, code, settings))
                except LoginRestart:
                    outcomes.append("restart")
                s.commit()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(c,)) for c in wrong]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(evaluated) <= settings.TOTP_ATTEMPTS
    assert True not in outcomes and outcomes.count("restart") >= len(wrong) - settings.TOTP_ATTEMPTS
