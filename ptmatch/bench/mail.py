"""Figure 2: post → offers → mail accepted by a real SMTP server.

An aiosmtpd server listens on loopback (a thread of this process) and notes when each
Message-ID arrives. The scheduler runs as its own process (`ptmatch scheduler`, exactly as
deployed) with SMTP_HOST/PORT pointing at it and the outbox settings as deployed: on
PostgreSQL the sender wakes on NOTIFY at commit (and polls every OUTBOX_SECONDS, 5 s, only
as the fallback); on SQLite it polls every OUTBOX_SQLITE_SECONDS (1 s). Each repetition:

1. `offers.post_slot(...)` in auto mode for a random therapist, a slot in the next days,
   then commit: the first wave and its outbox rows are in the database (time 1);
2. wait until the SMTP server has accepted every offer mail of that wave (time 2).

Both are measured from just before `post_slot`. A random pause between repetitions keeps
them from falling into step with the outbox interval.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from ptmatch import clock
from ptmatch.bench import procs
from ptmatch.bench.matching import make_slot
from ptmatch.bench.stats import Missing, need, summary_ms
from ptmatch.db import settings_of
from ptmatch.models import (
    Modality,
    Offer,
    OfferStatus,
    OutboxMessage,
    Practice,
    Slot,
    SlotStatus,
    Therapist,
    User,
)


class SmtpSink:
    """A loopback SMTP server that accepts everything and remembers arrival times."""

    def __init__(self):
        try:
            from aiosmtpd.controller import Controller
        except ImportError as err:  # only in the "test" extra
            raise Missing("aiosmtpd not installed (scripts/setup test)") from err
        self.arrived: dict[str, float] = {}
        self.count = 0
        self._lock = threading.Lock()
        self.port = procs.free_port()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook
                now = time.perf_counter()
                message_id = ""
                for line in envelope.content.split(b"\r\n"):
                    if not line:
                        break
                    if line.lower().startswith(b"message-id:"):
                        message_id = line.split(b":", 1)[1].strip().decode("ascii", "replace")
                with sink._lock:
                    sink.count += 1
                    sink.arrived.setdefault(message_id, now)
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()

    def wait_for(self, message_ids: set[str], timeout: float) -> float | None:
        """perf_counter time at which the last of `message_ids` arrived, or None on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                times = [self.arrived.get(m) for m in message_ids]
            if all(t is not None for t in times):
                return max(times)
            clock.pause(0.005)
        return None


def _posting_therapists(sessions: sessionmaker, rng: random.Random, count: int) -> list[int]:
    """Therapists who may post (approved, in person, 2FA on: the generator enrols them)."""
    with sessions() as session:
        ids = list(
            session.scalars(
                select(Therapist.id)
                .join(User, User.id == Therapist.user_id)
                .where(
                    Therapist.approved_at.is_not(None),
                    Therapist.offers_in_person.is_(True),
                    User.totp_confirmed_at.is_not(None),
                )
                .order_by(Therapist.id)
            )
        )
    return rng.sample(ids, min(count, len(ids)))


def run(
    sessions: sessionmaker,
    database_url: str,
    run_dir: Path,
    *,
    repetitions: int,
    seed: int,
) -> dict:
    (post_slot,) = need("ptmatch.domain.offers", "post_slot")
    need("ptmatch.notifications.delivery", "deliver_due")
    need("ptmatch.scheduler.tasks.outbox", "JOBS")
    rng = random.Random(seed)
    commit_times, smtp_times, wave_sizes = [], [], []
    timeouts = 0
    posted: list[int] = []
    with SmtpSink() as sink:
        scheduler_settings = {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": sink.port,
            "SMTP_SECURITY": "none",
            "BASE_URL": "http://127.0.0.1:5000",
        }
        with procs.scheduler(run_dir, database_url, **scheduler_settings) as scheduler:
            if not scheduler.wait_for_log("scheduler active", timeout=60):
                raise RuntimeError(
                    "the scheduler did not become active:\n" + scheduler.log_text()[-2000:]
                )
            engine_name = "sqlite" if database_url.startswith("sqlite") else "postgresql"
            poll = 1.0  # SQLite's poll (the default OUTBOX_SQLITE_SECONDS)
            clock.pause(2 * poll)  # its first round of jobs is done
            therapists = _posting_therapists(sessions, rng, repetitions * 4)
            for tid in therapists:
                if len(commit_times) >= repetitions:
                    break
                clock.pause(rng.uniform(0.2, 0.2 + poll))
                with sessions() as session:
                    therapist = session.get(Therapist, tid)
                    practice = session.get(Practice, therapist.practice_id)
                    now = clock.now()
                    template = make_slot(
                        rng, now, therapist, practice, days=(1, 3), modality=Modality.IN_PERSON
                    )
                    started = time.perf_counter()
                    slot = post_slot(
                        session,
                        now,
                        therapist.user,
                        therapist,
                        start_at=template.start_at,
                        minutes=template.minutes,
                        kind=template.kind,
                        modality=Modality.IN_PERSON,
                        settings=settings_of(session),
                    )
                    session.commit()
                    committed = time.perf_counter()
                    posted.append(slot.id)
                    offer_ids = session.scalars(
                        select(Offer.id).where(Offer.slot_id == slot.id)
                    ).all()
                    message_ids = set(
                        session.scalars(
                            select(OutboxMessage.message_id).where(
                                OutboxMessage.dedupe_key.in_([f"offer:{i}" for i in offer_ids])
                            )
                        )
                    )
                if not message_ids:
                    continue  # nobody fits this slot: no wave to time
                arrived = sink.wait_for(message_ids, timeout=30)
                commit_times.append(committed - started)
                wave_sizes.append(len(message_ids))
                if arrived is None:
                    timeouts += 1
                else:
                    smtp_times.append(arrived - started)
        scheduler_log = scheduler.log_text()
    _close(sessions, posted)
    return {
        "repetitions": len(commit_times),
        "wake_up": "LISTEN/NOTIFY" if engine_name == "postgresql" else "poll 1 s",
        "offers_per_wave": {
            "min": min(wave_sizes, default=None),
            "max": max(wave_sizes, default=None),
        },
        "to_outbox": summary_ms(commit_times),
        "to_smtp": summary_ms(smtp_times),
        "smtp_timeouts": timeouts,
        "mails_received": sink.count,
        "scheduler_errors": scheduler_log.count("Traceback"),
    }


def _close(sessions: sessionmaker, slot_ids: list[int]) -> None:
    """Take the benchmark's slots off the market (no more waves, no reminders)."""
    if not slot_ids:
        return
    with sessions() as session:
        now = clock.now()
        session.execute(
            update(Offer)
            .where(Offer.slot_id.in_(slot_ids), Offer.status == OfferStatus.PENDING)
            .values(status=OfferStatus.WITHDRAWN)
        )
        session.execute(
            update(Slot)
            .where(Slot.id.in_(slot_ids), Slot.status == SlotStatus.OFFERING)
            .values(status=SlotStatus.CANCELLED, closed_at=now)
        )
        session.commit()
