"""A small demo network around Bonn: practices, therapists, a secretariat, an admin, patients.

Staff demo accounts come pre-enrolled with fixed TOTP secrets (printed), so a person can
add them to an authenticator app, or read the current code with `ptmatch demo-logins`.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pyotp
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ptmatch.catalog import INSURANCES, LANGUAGES, METHODS, POPULATIONS, PROBLEM_AREAS
from ptmatch.domain.passwords import hash_password
from ptmatch.models import (
    Availability,
    CareStage,
    GroupProgram,
    GroupStatus,
    Modality,
    Patient,
    PatientClinical,
    Postcode,
    Practice,
    Preference,
    RegisteredVia,
    Role,
    Room,
    SecretariatAssignment,
    Therapist,
    User,
    WaitlistEntry,
)

BERLIN = ZoneInfo("Europe/Berlin")
DEMO_PASSWORD = "ptmatch-demo-2026"
DEMO_POSTCODES = Path(__file__).resolve().parent / "data" / "demo_postcodes.tsv"

STAFF = [
    # email, role, name, TOTP secret
    ("admin@demo.ptmatch.de", Role.ADMIN, "Alex Admin", "JBSWY3DPEHPK3PXPADMINAAAAAAAAAAA"),
    (
        "sekretariat@demo.ptmatch.de",
        Role.SECRETARY,
        "Sabine Sekretariat",
        "JBSWY3DPEHPK3PXPSEKRETARIATAAAAA",
    ),
    (
        "sommer@demo.ptmatch.de",
        Role.THERAPIST,
        "Dr. Anna Sommer",
        "JBSWY3DPEHPK3PXPSOMMERAAAAAAAAAA",
    ),
    ("becker@demo.ptmatch.de", Role.THERAPIST, "Jonas Becker", "JBSWY3DPEHPK3PXPBECKERAAAAAAAAAA"),
    # Issue 19: a second therapist at Sommer's, sharing its two rooms.
    ("weber@demo.ptmatch.de", Role.THERAPIST, "Paul Weber", "JBSWY3DPEHPK3PXPWEBERAAAAAAAAAAA"),
    ("yilmaz@demo.ptmatch.de", Role.THERAPIST, "Mira Yilmaz", "JBSWY3DPEHPK3PXPYILMAZAAAAAAAAAA"),
]

PRACTICES = [
    dict(
        name="Psychotherapie Sommer",
        slug="sommer",
        street="Poppelsdorfer Allee 12",
        postcode="53115",
        city="Bonn",
        phone="+49 228 1234560",
        accepts_pool=True,
    ),
    dict(
        name="Praxis am Rhein",
        slug="am-rhein",
        street="Rheinweg 3",
        postcode="53113",
        city="Bonn",
        phone="+49 228 7654320",
        accepts_pool=True,
    ),
    dict(
        name="Psychotherapie Beuel",
        slug="beuel",
        street="Friedrich-Breuer-Str. 20",
        postcode="53225",
        city="Bonn",
        phone="+49 228 4444440",
        accepts_pool=False,
    ),
]

# (first, last, postcode, birth year, gender, problems, methods, urgent, lists, pool, video, group)
PATIENTS = [
    (
        "Lena",
        "Hoffmann",
        "53111",
        1991,
        "f",
        ["depression", "burnout"],
        ["vt"],
        False,
        ["sommer"],
        True,
        "acceptable",
        "no",
    ),
    (
        "Tobias",
        "Krüger",
        "53113",
        1985,
        "m",
        ["anxiety"],
        ["vt"],
        True,
        ["sommer", "am-rhein"],
        False,
        "wanted",
        "acceptable",
    ),
    (
        "Aylin",
        "Demir",
        "53119",
        1998,
        "f",
        ["trauma"],
        ["vt", "emdr"],
        False,
        ["sommer"],
        True,
        "acceptable",
        "no",
    ),
    (
        "Jonas",
        "Wagner",
        "53225",
        1979,
        "m",
        ["addiction", "depression"],
        ["tp"],
        False,
        ["am-rhein"],
        True,
        "no",
        "acceptable",
    ),
    (
        "Marie",
        "Schulz",
        "53173",
        2002,
        "f",
        ["eating"],
        ["vt", "dbt"],
        True,
        ["sommer", "beuel"],
        False,
        "acceptable",
        "wanted",
    ),
    (
        "Paul",
        "Neumann",
        "53121",
        1968,
        "m",
        ["grief"],
        ["tp", "st"],
        False,
        [],
        True,
        "acceptable",
        "no",
    ),
    (
        "Sofia",
        "Klein",
        "53129",
        1994,
        "f",
        ["ocd", "anxiety"],
        ["vt"],
        False,
        ["sommer"],
        False,
        "wanted",
        "no",
    ),
    (
        "Emil",
        "Fischer",
        "53117",
        1988,
        "m",
        ["adhd"],
        ["vt"],
        False,
        ["am-rhein", "sommer"],
        False,
        "acceptable",
        "acceptable",
    ),
    (
        "Hanna",
        "Weber",
        "53227",
        1975,
        "f",
        ["psychosomatic", "sleep"],
        ["st"],
        False,
        ["beuel"],
        True,
        "no",
        "no",
    ),
    (
        "Yusuf",
        "Aydin",
        "53757",
        2000,
        "m",
        ["depression"],
        [],
        False,
        [],
        True,
        "acceptable",
        "acceptable",
    ),
    (
        "Clara",
        "Richter",
        "53111",
        1983,
        "f",
        ["personality"],
        ["dbt", "vt"],
        False,
        ["sommer"],
        False,
        "acceptable",
        "wanted",
    ),
    (
        "Ben",
        "Schmitt",
        "53332",
        1996,
        "m",
        ["anxiety", "depression"],
        ["vt"],
        False,
        ["sommer", "am-rhein"],
        True,
        "wanted",
        "no",
    ),
]


def has_users(session: Session) -> bool:
    return (session.scalar(select(func.count(User.id))) or 0) > 0


def load_postcodes(session: Session, path: Path = DEMO_POSTCODES) -> int:
    count = 0
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            session.add(
                Postcode(
                    code=row[1], place=row[2], state=row[3], lat=float(row[9]), lon=float(row[10])
                )
            )
            count += 1
    session.flush()
    return count


def _coords(session: Session, code: str) -> tuple[float | None, float | None]:
    row = session.execute(
        select(Postcode.lat, Postcode.lon).where(Postcode.code == code).limit(1)
    ).first()
    return (row[0], row[1]) if row else (None, None)


def demo_group_start(now: dt.datetime) -> dt.datetime:
    """The demo group's first session: a Thursday 17:00 Berlin, two to three weeks ahead."""
    day = (now + dt.timedelta(days=14)).astimezone(BERLIN).date()
    while day.weekday() != 3:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(17, 0), tzinfo=BERLIN).astimezone(dt.UTC)


def load(session: Session, now: dt.datetime) -> None:
    if session.scalar(select(func.count(Postcode.id))) == 0:
        load_postcodes(session)
    pw = hash_password(DEMO_PASSWORD)
    users = {}
    for email, role, name, secret in STAFF:
        user = User(
            email=email,
            password_hash=pw,
            role=role,
            display_name=name,
            locale="de",
            created_at=now,
            email_verified_at=now,
            totp_secret=secret,
            totp_confirmed_at=now,
            session_version=1,
            failed_logins=0,
            is_enabled=True,
        )
        session.add(user)
        users[email] = user
    session.flush()
    practices = {}
    for data in PRACTICES:
        lat, lon = _coords(session, data["postcode"])
        practice = Practice(
            **data,
            lat=lat,
            lon=lon,
            created_at=now,
            website="",
            booking_info=(
                "Bitte kommen Sie 5 Minuten vor Beginn. Bringen Sie Ihre Versichertenkarte mit. "
                "Klingel: 2. OG."
            ),
            cancellation_policy=(
                "Absagen bitte bis 24 Stunden vorher. Nicht abgesagte Termine können in Rechnung "
                "gestellt werden."
            ),
            video_link_template="https://video.example.org/raum/{slot_id}",
        )
        session.add(practice)
        practices[data["slug"]] = practice
    session.flush()
    therapist_specs = [
        (
            "sommer@demo.ptmatch.de",
            "sommer",
            "f",
            "Dr.",
            ["vt", "dbt"],
            ["depression", "anxiety", "eating"],
            ["psychosis", "addiction"],
            True,
            False,
        ),
        (
            "becker@demo.ptmatch.de",
            "am-rhein",
            "m",
            "",
            ["tp"],
            ["depression", "grief", "addiction"],
            ["eating"],
            True,
            True,
        ),
        (
            "yilmaz@demo.ptmatch.de",
            "beuel",
            "f",
            "",
            ["st", "emdr"],
            ["trauma", "psychosomatic"],
            [],
            True,
            True,
        ),
        (
            "weber@demo.ptmatch.de",
            "sommer",
            "m",
            "",
            ["tp"],
            ["depression", "grief"],
            ["psychosis"],
            True,
            False,
        ),
    ]
    # Issue 19: Sommer's practice has two rooms, shared by its two therapists.
    rooms = {
        name: Room(
            practice_id=practices["sommer"].id,
            name=name,
            capacity=capacity,
            accessible=accessible,
            note=note,
        )
        for name, capacity, accessible, note in (
            ("Raum 1", 2, False, "2. OG, kein Aufzug"),
            ("Raum 2", 10, True, "Erdgeschoss, barrierefrei; auch für Gruppen"),
        )
    }
    session.add_all(rooms.values())
    session.flush()
    default_rooms = {"sommer@demo.ptmatch.de": "Raum 1", "weber@demo.ptmatch.de": "Raum 2"}
    therapists = {}
    for email, slug, gender, title, methods, specs, excl, in_person, video in therapist_specs:
        therapists[email] = Therapist(
            user_id=users[email].id,
            practice_id=practices[slug].id,
            gender=gender,
            title=title,
            approbation="Psychologische Psychotherapeutin (Approbation 2015, Köln)",
            approved_at=now,
            methods_mask=METHODS.to_mask(methods),
            specialties_mask=PROBLEM_AREAS.to_mask(specs),
            exclusions_mask=PROBLEM_AREAS.to_mask(excl),
            populations_mask=POPULATIONS.to_mask(["adults", "seniors", "adolescents"]),
            languages_mask=LANGUAGES.to_mask(["de", "en"] + (["tr"] if slug == "beuel" else [])),
            insurances_mask=INSURANCES.all_mask,
            offers_in_person=in_person,
            offers_video=video,
            offers_group=slug == "sommer",
            session_minutes=50,
            buffer_minutes=10,
            switch_buffer_minutes=15,
            default_room_id=rooms[default_rooms[email]].id if email in default_rooms else None,
        )
        session.add(therapists[email])
    session.flush()
    # An open group at Sommer's that fitting patients see on their dashboard and join themselves.
    session.add(
        GroupProgram(
            practice_id=practices["sommer"].id,
            therapist_id=therapists["sommer@demo.ptmatch.de"].id,
            title="DBT-Skillsgruppe",
            method="dbt",
            problems_mask=0,
            modality=Modality.IN_PERSON,
            first_session_at=demo_group_start(now),
            session_count=8,
            minutes=100,
            min_participants=4,
            max_participants=8,
            enrolled_count=0,
            status=GroupStatus.OPEN,
            wave_size=5,
            offer_ttl_minutes=1440,
            current_wave=0,
            created_at=now,
            room_id=rooms["Raum 2"].id,
            self_enrol=True,
        )
    )
    # A therapist who requested an account and waits for the admin's approval (no TOTP yet).
    pending = User(
        email="neumann@demo.ptmatch.de",
        password_hash=pw,
        role=Role.THERAPIST,
        display_name="Lea Neumann",
        locale="de",
        created_at=now,
        session_version=1,
        failed_logins=0,
        is_enabled=True,
    )
    session.add(pending)
    session.flush()
    session.add(
        Therapist(
            user_id=pending.id,
            practice_id=None,
            gender="f",
            approved_at=None,
            lanr="123456789",
            approbation="Psychologische Psychotherapeutin (Approbation 2021, Düsseldorf)",
            populations_mask=POPULATIONS.to_mask(["adults"]),
            languages_mask=LANGUAGES.to_mask(["de"]),
            insurances_mask=INSURANCES.all_mask,
        )
    )
    for slug in ("sommer", "am-rhein"):
        session.add(
            SecretariatAssignment(
                user_id=users["sekretariat@demo.ptmatch.de"].id, practice_id=practices[slug].id
            )
        )
    for i, (
        first,
        last,
        code,
        year,
        gender,
        problems,
        methods,
        urgent,
        lists,
        pool,
        video,
        group,
    ) in enumerate(PATIENTS, 1):
        user = User(
            email=f"patient{i}@demo.ptmatch.de",
            password_hash=pw,
            role=Role.PATIENT,
            display_name="",
            locale="de",
            created_at=now,
            email_verified_at=now,
            session_version=1,
            failed_logins=0,
            is_enabled=True,
        )
        session.add(user)
        session.flush()
        lat, lon = _coords(session, code)
        joined = now - dt.timedelta(days=200 - 14 * i)
        stage, ptv11_date = _care_stage(i, urgent, now)
        patient = Patient(
            user_id=user.id,
            first_name=first,
            last_name=last,
            phone=f"+4917000000{i:02d}",
            birth_date=dt.date(year, 1 + i % 12, 1 + (3 * i) % 27),
            gender=gender,
            postcode=code,
            lat=lat,
            lon=lon,
            max_distance_km=25,
            languages_mask=LANGUAGES.to_mask(["de"]),
            therapist_gender_wish="any",
            methods_mask=METHODS.to_mask(methods),
            insurance="gkv",
            video_pref=Preference(video),
            group_pref=Preference(group),
            care_stage=stage,
            ptv11_date=ptv11_date,
            created_at=joined,
            last_confirmed_at=now - dt.timedelta(days=i),
            consent_health_at=joined,
            consent_rules_at=joined,
        )
        session.add(patient)
        session.flush()
        session.add(
            PatientClinical(
                patient_id=patient.id,
                problems_mask=PROBLEM_AREAS.to_mask(problems),
                urgent=urgent,
                urgency_code="PTV11-A1B2C3" if urgent else "",
                ptv11_care="einzel" if ptv11_date is not None else "",
                description=(
                    "Seit einigen Monaten zunehmende Beschwerden; Hausarzt hat Psychotherapie "
                    "empfohlen."
                ),
                updated_at=joined,
            )
        )
        # Weekdays 8:00-20:00 for most; some only afternoons, so matching has something to do.
        for weekday in range(5):
            start = 8 * 60 if i % 3 else 14 * 60
            session.add(
                Availability(
                    patient_id=patient.id, weekday=weekday, start_min=start, end_min=20 * 60
                )
            )
        for slug in lists:
            session.add(
                WaitlistEntry(
                    patient_id=patient.id,
                    practice_id=practices[slug].id,
                    added_at=joined,
                    via_practice_link=(slug == "sommer" and i % 4 == 0),
                )
            )
        if pool:
            session.add(WaitlistEntry(patient_id=patient.id, practice_id=None, added_at=joined))
    session.flush()
    _phone_caller(session, now, practices, users["sekretariat@demo.ptmatch.de"])


PHONE_CALLER = ("Hildegard", "Anrufer", "53115", 1948)


def _phone_caller(session: Session, now: dt.datetime, practices: dict, secretary: User) -> None:
    """A caller registered by phone, without email, free on weekday mornings: the longest wait
    on the Sommer list, so a morning slot there goes to her first and shows up in the
    secretariat's call queue."""
    first, last, code, year = PHONE_CALLER
    lat, lon = _coords(session, code)
    joined = now - dt.timedelta(days=400)
    patient = Patient(
        user_id=None,
        first_name=first,
        last_name=last,
        phone="+492284444499",
        birth_date=dt.date(year, 3, 3),
        gender="f",
        postcode=code,
        lat=lat,
        lon=lon,
        max_distance_km=15,
        languages_mask=LANGUAGES.to_mask(["de"]),
        therapist_gender_wish="any",
        methods_mask=0,
        insurance="gkv",
        video_pref=Preference.NO,
        group_pref=Preference.NO,
        care_stage=CareStage.ANY,
        registered_via=RegisteredVia.SECRETARIAT,
        registered_by_id=secretary.id,
        consent_recorded_by_id=secretary.id,
        created_at=joined,
        last_confirmed_at=now - dt.timedelta(days=3),
        consent_health_at=joined,
        consent_rules_at=joined,
    )
    session.add(patient)
    session.flush()
    session.add(PatientClinical(patient_id=patient.id, problems_mask=0, updated_at=joined))
    for weekday in range(5):
        session.add(
            Availability(patient_id=patient.id, weekday=weekday, start_min=8 * 60, end_min=12 * 60)
        )
    session.add(
        WaitlistEntry(patient_id=patient.id, practice_id=practices["sommer"].id, added_at=joined)
    )
    session.flush()


def _care_stage(i: int, urgent: bool, now: dt.datetime) -> tuple[CareStage, dt.date | None]:
    """Where a demo patient is in care: the urgent ones hold a recent PTV 11 (deadlines within
    days, so the "at risk" list has rows); every fifth one a PTV 11 without urgency; every
    fourth looks for a first Sprechstunde; the rest take anything."""
    today = now.date()
    if urgent:
        return CareStage.THERAPY, today - dt.timedelta(days=18 + 3 * (i % 4))
    if i % 5 == 0:
        return CareStage.THERAPY, today - dt.timedelta(days=40 + i)
    if i % 4 == 0:
        return CareStage.SPRECHSTUNDE, None
    return CareStage.ANY, None


def logins_text(with_codes: bool = False) -> str:
    lines = [
        f"Demo logins (password for every account: {DEMO_PASSWORD})",
        "Staff accounts need a TOTP code: add the secret to an authenticator app,",
        "or print the current codes with `.venv/bin/ptmatch demo-logins`.",
        "",
    ]
    for email, role, name, secret in STAFF:
        code = f"   current code: {pyotp.TOTP(secret).now()}" if with_codes else ""
        lines.append(f"  {role.value:<10} {email:<30} {name:<20} TOTP secret {secret}{code}")
    lines.append(
        f"  patient    patient1@demo.ptmatch.de … patient{len(PATIENTS)}@demo.ptmatch.de (no 2FA)"
    )
    return "\n".join(lines)
