"""Figure 6: a workbench page with a free-text filter on a list of (up to) 100k entries.

One practice of the region gets a list of every active patient (at most 100k entries,
written for the figure and removed afterwards); its therapist's first list page (25 rows
and the count) is timed with a free-text filter — `Filters(q=...)`, which on PostgreSQL is
an ILIKE served by the pg_trgm GIN index and on SQLite a MATCH on the FTS5 trigram table —
for words of the synthetic intake texts, common and rare, and one that matches nothing.
Each in a fresh session; one warm-up pass, then 5 counted passes.
"""

from __future__ import annotations

import time

from sqlalchemy import delete, func, insert, literal, select, text
from sqlalchemy.orm import sessionmaker

from ptmatch.bench.stats import summary_ms
from ptmatch.models import (
    EntryStatus,
    Patient,
    PatientStatus,
    Practice,
    Therapist,
    WaitlistEntry,
)

# Words of the generator's intake texts (ptmatch.bench.generate.DESCRIPTIONS) and one that
# no text contains.
TERMS = ("Panik", "Schlaf", "Trauer", "Arbeit", "Zwang", "xylophon")
LIST_CAP = 100_000


def run(sessions: sessionmaker, now, *, passes: int = 5) -> dict:
    from ptmatch.domain import workbench

    with sessions() as session:
        therapist = session.scalar(
            select(Therapist)
            .join(Practice, Practice.id == Therapist.practice_id)
            .where(Therapist.approved_at.is_not(None), Practice.is_active.is_(True))
            .order_by(Therapist.id)
            .limit(1)
        )
        therapist_id, practice_id = therapist.id, therapist.practice_id
        listed = set(
            session.scalars(
                select(WaitlistEntry.patient_id).where(WaitlistEntry.practice_id == practice_id)
            )
        )
        ids = [
            pid
            for pid in session.scalars(
                select(Patient.id)
                .where(Patient.status == PatientStatus.ACTIVE)
                .order_by(Patient.id)
                .limit(LIST_CAP + len(listed))
            )
            if pid not in listed
        ][: max(LIST_CAP - len(listed), 0)]
        rows = [
            {
                "patient_id": pid,
                "practice_id": practice_id,
                "status": EntryStatus.ACTIVE,
                "priority": 0,
                "via_practice_link": False,
                "added_at": now,
            }
            for pid in ids
        ]
        for i in range(0, len(rows), 5000):
            session.execute(insert(WaitlistEntry), rows[i : i + 5000])
        session.commit()
        # The planner's statistics know the list just written (as after a day of autovacuum /
        # `PRAGMA optimize`): without them it plans for the practice's few entries before.
        session.execute(text("ANALYZE waitlist_entries"))
        session.commit()
        entries = session.scalar(
            select(func.count(WaitlistEntry.id)).where(
                WaitlistEntry.practice_id == practice_id,
                WaitlistEntry.status == EntryStatus.ACTIVE,
            )
        )
    try:
        times: dict[str, list[float]] = {t: [] for t in (*TERMS, "")}
        cpu: dict[str, list[float]] = {t: [] for t in times}
        totals: dict[str, int] = {}
        for n in range(passes + 1):
            for term in times:
                with sessions() as session:
                    therapist = session.get(Therapist, therapist_id)
                    _ = therapist.user
                    started, cpu_started = time.perf_counter(), time.process_time()
                    page = workbench.list_waitlist(
                        session, now, therapist, workbench.Filters(q=term)
                    )
                    elapsed = time.perf_counter() - started
                    spent = time.process_time() - cpu_started
                    session.rollback()  # the audit event of the view is not kept
                if n:
                    times[term].append(elapsed)
                    cpu[term].append(spent)
                totals[term] = page.total
    finally:
        with sessions() as session:
            if ids:
                for i in range(0, len(ids), 5000):
                    session.execute(
                        delete(WaitlistEntry).where(
                            WaitlistEntry.practice_id == practice_id,
                            WaitlistEntry.patient_id.in_(ids[i : i + 5000]),
                            literal(True),
                        )
                    )
            session.commit()
    with_text = [t for term in TERMS for t in times[term]]
    return {
        "entries": entries,
        "terms": {t: {"matches": totals[t], **summary_ms(times[t])} for t in TERMS},
        "with_text": summary_ms(with_text),
        "without_text": summary_ms(times[""]),
        # SQLite: all the work, hardly disturbed by other load; PostgreSQL: the client side.
        "cpu_with_text": summary_ms([t for term in TERMS for t in cpu[term]]),
    }
