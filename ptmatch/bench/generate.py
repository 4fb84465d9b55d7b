"""The synthetic region: practices, approved therapists and patients, in bulk, with a fixed seed.

`generate(engine, spec, now)` fills an EMPTY schema (see `reset_database`) with

- practices at postcodes of the region (weighted like the patients: therapists sit where
  people live), 1-3 therapists each, one therapist per `patients_per_therapist` patients;
- `spec.size` active patients plus `spec.extra_ratio` as many paused, booked and inactive
  ones; each with a user (97 %: a few callers have no e-mail), clinical intake,
  availability windows and waitlist entries (practice lists near home, the regional pool,
  and some removed entries kept with a reason).

The distributions below are plausible, not measured: most patients want German, adults
dominate, evening windows are the most common, waiting times are long-tailed (months).
The same seed gives the same region on both engines.

Rows are built as tuples and written per table and chunk: PostgreSQL gets `COPY ... FROM
STDIN` (psycopg), SQLite gets Core `insert()` with executemany. Ids are assigned here, so
no row has to come back from the database; the PostgreSQL sequences are moved past them.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Table, inspect, text
from sqlalchemy.engine import Connection, Engine

from ptmatch.bench.geography import Place, Region, distance_km, region_for
from ptmatch.catalog import INSURANCES, LANGUAGES, METHODS, POPULATIONS, PROBLEM_AREAS
from ptmatch.db import Base, UTCDateTime, is_sqlite
from ptmatch.domain import match_columns
from ptmatch.models.patients import AVAIL_COLUMNS

BENCH_DOMAIN = "bench.invalid"
CHUNK = 20_000  # patients per write batch

FIRST_NAMES = [
    "Anna",
    "Lena",
    "Marie",
    "Sophie",
    "Laura",
    "Julia",
    "Sarah",
    "Lea",
    "Hannah",
    "Emma",
    "Paul",
    "Jonas",
    "Lukas",
    "Leon",
    "Finn",
    "Felix",
    "Max",
    "Tim",
    "Jan",
    "Ben",
    "Aylin",
    "Elif",
    "Mehmet",
    "Yusuf",
    "Olga",
    "Irina",
    "Piotr",
    "Anja",
    "Katrin",
    "Thomas",
]
LAST_NAMES = [
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Schröder",
    "Neumann",
    "Schwarz",
    "Braun",
    "Zimmermann",
    "Krüger",
    "Hofmann",
    "Hartmann",
    "Lange",
    "Werner",
    "Krause",
    "Lehmann",
    "Yilmaz",
    "Kaya",
    "Nowak",
    "Kowalski",
]
DESCRIPTIONS = [
    (
        "Seit einigen Monaten gedrückte Stimmung und Antriebslosigkeit; Hausärztin empfiehlt "
        "Psychotherapie."
    ),
    "Wiederkehrende Panikattacken, vor allem in Bus und Bahn; Vermeidung nimmt zu.",
    "Nach einem Unfall Albträume und Schreckhaftigkeit; Arbeit fällt schwer.",
    "Erschöpfung nach langer Überlastung im Beruf, Schlafprobleme.",
    "Zwangsgedanken und Kontrollhandlungen, die viel Zeit kosten.",
    "Trauer nach dem Tod eines Angehörigen, Rückzug von Freunden.",
]

PROBLEM_WEIGHTS = [
    ("depression", 40),
    ("anxiety", 30),
    ("burnout", 12),
    ("trauma", 10),
    ("psychosomatic", 8),
    ("sleep", 7),
    ("ocd", 5),
    ("grief", 5),
    ("eating", 4),
    ("adhd", 4),
    ("personality", 4),
    ("addiction", 3),
    ("couples_family", 3),
    ("self_harm", 2),
    ("bipolar", 2),
    ("psychosis", 1),
    ("autism", 1),
    ("sexual", 1),
]
EXCLUSION_WEIGHTS = [
    ("psychosis", 30),
    ("addiction", 25),
    ("autism", 10),
    ("eating", 8),
    ("sexual", 6),
    ("personality", 5),
    ("couples_family", 8),
]
SECOND_LANGUAGES = [
    ("en", 30),
    ("tr", 4),
    ("ru", 3),
    ("ar", 2),
    ("pl", 2),
    ("fr", 3),
    ("es", 2),
    ("it", 1),
    ("fa", 1),
    ("uk", 1),
    ("ku", 1),
    ("sgn", 1),
]
OTHER_MOTHER_TONGUES = [
    ("tr", 30),
    ("ar", 20),
    ("ru", 15),
    ("uk", 12),
    ("en", 10),
    ("pl", 8),
    ("fa", 5),
]


@dataclass
class Spec:
    size: int  # active patients
    seed: int = 2026
    extra_ratio: float = 0.2  # paused / booked / inactive patients in addition
    patients_per_therapist: int = 40
    postcodes: Path | None = None


@dataclass
class Summary:
    size: int
    seed: int
    region_source: str
    region_places: int
    region_radius_km: float
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "size": self.size,
            "seed": self.seed,
            "region": {
                "source": self.region_source,
                "postcodes": self.region_places,
                "radius_km": round(self.region_radius_km, 1),
            },
            "rows": self.rows,
            "seconds": round(self.seconds, 1),
        }


# --- writing -----------------------------------------------------------------------------


class BulkWriter:
    """Writes tuples into a table: COPY on PostgreSQL, executemany (Core insert) on SQLite."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.sqlite = is_sqlite(conn.engine)
        self.rows: dict[str, int] = {}

    def write(self, table_name: str, columns: list[str], rows: list[tuple]) -> None:
        if not rows:
            return
        table: Table = Base.metadata.tables[table_name]
        self.rows[table_name] = self.rows.get(table_name, 0) + len(rows)
        if self.sqlite:
            self.conn.execute(
                table.insert(), [dict(zip(columns, row, strict=True)) for row in rows]
            )
            return
        # COPY takes naive UTC for the UTCDateTime columns (what the type decorator would send).
        dt_idx = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, UTCDateTime)]
        raw = self.conn.connection.driver_connection
        sql = f'COPY "{table_name}" ({", ".join(columns)}) FROM STDIN'
        with raw.cursor() as cur, cur.copy(sql) as copy:
            for row in rows:
                if dt_idx:
                    row = list(row)
                    for i in dt_idx:
                        if row[i] is not None:
                            row[i] = row[i].replace(tzinfo=None)
                copy.write_row(row)


# --- schema --------------------------------------------------------------------------------


class NotABenchDatabase(RuntimeError):
    """The database holds data that the generator did not make; it refuses to wipe it."""


def foreign_users(engine: Engine) -> int:
    """How many users do not belong to a generated region (0 on an empty database)."""
    if "users" not in inspect(engine).get_table_names():
        return 0
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM users WHERE email NOT LIKE :d"), {"d": f"%@{BENCH_DOMAIN}"}
        ).scalar_one()


def reset_database(url: str, force: bool = False) -> None:
    """Drop everything and migrate to head. Refuses a database with non-benchmark users."""
    from ptmatch.db import make_engine
    from ptmatch.migrate import upgrade

    engine = make_engine(url)
    try:
        if not force and foreign_users(engine):
            raise NotABenchDatabase(
                "the database holds users that the benchmark did not create; refusing to wipe it "
                "(use an empty database, or --force)"
            )
        if is_sqlite(engine):
            path = engine.url.database
            engine.dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(path + suffix).unlink(missing_ok=True)
        else:
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
    upgrade(url)


def analyze(engine: Engine) -> None:
    """The steady state after a bulk load: planner statistics, and on PostgreSQL the visibility
    map too (VACUUM; autovacuum would get there later), so index-only scans can work."""
    with engine.connect() as conn:
        if is_sqlite(engine):
            conn.exec_driver_sql("ANALYZE")
        else:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        conn.commit()


BULK_TABLES = ("users", "patients", "patient_clinical", "availability", "waitlist_entries")


def _drop_indexes(conn: Connection, tables) -> list:
    """Drop the non-unique indexes of `tables`; returns them for `_create_indexes`."""
    dropped = []
    for name in tables:
        for index in Base.metadata.tables[name].indexes:
            if not index.unique:
                conn.execute(text(f'DROP INDEX IF EXISTS "{index.name}"'))
                dropped.append(index)
    return dropped


def _create_indexes(conn: Connection, indexes, note: Callable[[str], None] | None) -> None:
    if note:
        note(f"building {len(indexes)} indexes")
    for index in indexes:
        index.create(conn)


def _move_sequences(conn: Connection) -> None:
    if is_sqlite(conn.engine):
        return
    for table in (
        "postcodes",
        "practices",
        "users",
        "therapists",
        "patients",
        "availability",
        "waitlist_entries",
    ):
        conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        )


# --- sampling helpers ----------------------------------------------------------------------


def _weighted(pairs: list[tuple[str, int]]):
    codes = [c for c, _ in pairs]
    cum = []
    acc = 0
    for _, w in pairs:
        acc += w
        cum.append(acc)
    return codes, cum


class _Near:
    """Practices within 50 km of a place, nearest first (cached per postcode)."""

    CELL = 0.25  # degrees latitude (~28 km); longitude cells are scaled to match

    def __init__(self, practices: list[tuple[int, float, float, bool]]):
        self.cells: dict[tuple[int, int], list[tuple[int, float, float, bool]]] = {}
        for p in practices:
            self.cells.setdefault(self._cell(p[1], p[2]), []).append(p)
        self.cache: dict[str, tuple[list[float], list[int]]] = {}

    def _cell(self, lat: float, lon: float) -> tuple[int, int]:
        return int(math.floor(lat / self.CELL)), int(math.floor(lon / (self.CELL * 1.5)))

    def of(self, place: Place) -> tuple[list[float], list[int]]:
        """(distances, practice ids), nearest first."""
        hit = self.cache.get(place.code)
        if hit is not None:
            return hit
        ci, cj = self._cell(place.lat, place.lon)
        found = []
        for di in (-2, -1, 0, 1, 2):
            for dj in (-2, -1, 0, 1, 2):
                for pid, lat, lon, _pool in self.cells.get((ci + di, cj + dj), ()):
                    d = distance_km(place.lat, place.lon, lat, lon)
                    if d <= 50:
                        found.append((d, pid))
        found.sort()
        hit = ([d for d, _ in found], [p for _, p in found])
        self.cache[place.code] = hit
        return hit


def _availability(rng: random.Random) -> list[tuple[int, int, int]]:
    """Weekly windows (weekday, start_min, end_min), Berlin wall clock."""
    r = rng.random()
    if r < 0.15:  # flexible: weekdays 8-20
        windows = [(d, 8 * 60, 20 * 60) for d in range(5)]
    elif r < 0.45:  # working: evenings
        start = rng.choice((16, 17, 17, 18)) * 60
        days = sorted(rng.sample(range(5), rng.randint(3, 5)))
        windows = [(d, start, 20 * 60) for d in days]
    elif r < 0.60:  # shifts or studies: mornings
        days = sorted(rng.sample(range(5), rng.randint(2, 4)))
        windows = [(d, 8 * 60, rng.choice((11, 12, 13)) * 60) for d in days]
    else:  # a few windows here and there
        windows = []
        for d in sorted(rng.sample(range(5), rng.randint(2, 4))):
            start = rng.randint(8, 16) * 60 + rng.choice((0, 30))
            windows.append((d, start, min(20 * 60, start + rng.randint(2, 4) * 60)))
    if rng.random() < 0.05:
        windows.append((5, 9 * 60, 13 * 60))
    return windows


# --- the generator -------------------------------------------------------------------------


def generate(
    engine: Engine,
    spec: Spec,
    now: dt.datetime,
    progress: Callable[[int], None] | None = None,
    progress_note: Callable[[str], None] | None = None,
) -> Summary:
    """Fill an empty schema with the region of `spec`. `progress(n)` after every n patients."""
    started = time.perf_counter()
    rng = random.Random(spec.seed)
    region: Region = region_for(spec.size, spec.postcodes)
    summary = Summary(spec.size, spec.seed, region.source, len(region.places), region.radius_km)

    problem_codes, problem_cum = _weighted(PROBLEM_WEIGHTS)
    excl_codes, excl_cum = _weighted(EXCLUSION_WEIGHTS)
    lang2_codes, lang2_cum = _weighted(SECOND_LANGUAGES)
    tongue_codes, tongue_cum = _weighted(OTHER_MOTHER_TONGUES)
    lang = LANGUAGES.by_code
    de_bit = 1 << lang["de"].bit

    with engine.begin() as conn:
        writer = BulkWriter(conn)
        # PostgreSQL: secondary indexes of the big tables are built once at the end (faster
        # than maintaining them row by row); unique ones stay, they guard the data.
        deferred = [] if writer.sqlite else _drop_indexes(conn, BULK_TABLES)
        _write_postcodes(writer, region, spec.postcodes)

        # Practices and therapists.
        n_therapists = max(3, spec.size // spec.patients_per_therapist)
        practices, therapists, t_users = [], [], []
        practice_points = []
        tid = 0
        pid = 0
        while tid < n_therapists:
            pid += 1
            place = region.sample(rng)
            accepts_pool = rng.random() < 0.75
            practices.append(
                (
                    pid,
                    f"Praxis {rng.choice(LAST_NAMES)} {pid}",
                    f"bench-{pid:06d}",
                    f"Hauptstraße {rng.randint(1, 120)}",
                    place.code,
                    place.place[:120],
                    place.lat,
                    place.lon,
                    f"+49 228 {rng.randint(100000, 999999)}",
                    "",
                    "Bitte klingeln Sie im 2. OG.",
                    "Absagen bitte bis 24 Stunden vorher.",
                    "https://video.example.org/raum/{slot_id}",
                    accepts_pool,
                    24,
                    120,
                    True,
                    now - dt.timedelta(days=400),
                )
            )
            practice_points.append((pid, place.lat, place.lon, accepts_pool))
            for _ in range(rng.choices((1, 2, 3), (65, 25, 10))[0]):
                tid += 1
                therapists.append(
                    _therapist_row(rng, tid, pid, now, excl_codes, excl_cum, lang2_codes, lang2_cum)
                )
                t_users.append(
                    _user_row(
                        tid, f"t{tid}@{BENCH_DOMAIN}", "therapist", now - dt.timedelta(days=400)
                    )
                )
        # One secretariat account: it registered the callers without e-mail (and their consent).
        secretary_id = tid + 1
        t_users.append(
            _user_row(
                secretary_id,
                f"secretariat@{BENCH_DOMAIN}",
                "secretary",
                now - dt.timedelta(days=400),
            )
        )
        writer.write("practices", PRACTICE_COLS, practices)
        writer.write("users", USER_COLS, t_users)
        writer.write("therapists", THERAPIST_COLS, therapists)
        near = _Near(practice_points)
        next_user_id = secretary_id + 1

        total_patients = spec.size + int(spec.size * spec.extra_ratio)
        # Statuses: the first `size` are active; the rest booked / paused / inactive.
        patient_id = 0
        avail_id = 0
        entry_id = 0
        done = 0
        while done < total_patients:
            n = min(CHUNK, total_patients - done)
            users, patients, clinical, avail, entries = [], [], [], [], []
            for _ in range(n):
                patient_id += 1
                active = patient_id <= spec.size
                if active:
                    status = "active"
                else:
                    status = rng.choices(("booked", "paused", "inactive"), (50, 30, 20))[0]
                place = region.sample(rng)
                waited = min(720, max(1, int(rng.expovariate(1 / 150))))
                created = now - dt.timedelta(days=waited, minutes=rng.randint(0, 1439))
                user_id = None
                if rng.random() < 0.97:
                    user_id = next_user_id
                    next_user_id += 1
                    users.append(
                        _user_row(
                            user_id,
                            f"p{patient_id}@{BENCH_DOMAIN}",
                            "patient",
                            created,
                            locale="en" if rng.random() < 0.05 else "de",
                        )
                    )
                # Languages: most speak German, some only their mother tongue (+ maybe English).
                if rng.random() < 0.95:
                    lmask = de_bit
                    if rng.random() < 0.2:
                        lmask |= 1 << lang[rng.choices(lang2_codes, cum_weights=lang2_cum)[0]].bit
                else:
                    lmask = 1 << lang[rng.choices(tongue_codes, cum_weights=tongue_cum)[0]].bit
                age_band = rng.random()
                if age_band < 0.05:
                    age = rng.randint(6, 13)
                elif age_band < 0.13:
                    age = rng.randint(14, 17)
                elif age_band < 0.93:
                    age = rng.randint(18, 64)
                else:
                    age = rng.randint(65, 88)
                birth = now.date() - dt.timedelta(days=age * 365 + rng.randint(0, 364))
                methods = 0
                m = rng.random()
                if m < 0.25:
                    methods = 1 << METHODS.by_code["vt"].bit
                elif m < 0.35:
                    methods = 1 << METHODS.by_code["tp"].bit
                elif m < 0.40:
                    methods = METHODS.to_mask(
                        rng.sample(("emdr", "dbt", "schema", "st", "ap"), 1) + ["vt"]
                    )
                max_km = rng.choices((10, 20, 30, 50, 100), (20, 38, 25, 14, 3))[0]
                paused_until = (
                    (now.date() + dt.timedelta(days=rng.randint(7, 90)))
                    if status == "paused"
                    else None
                )
                # Care stage (issue 13): a therapy place or Probatorik only with a PTV 11 form.
                stage = rng.choices(("any", "sprechstunde", "therapy"), (50, 25, 25))[0]
                ptv11 = (
                    now.date() - dt.timedelta(days=rng.randint(1, 120))
                    if stage == "therapy" or (stage == "any" and rng.random() < 0.5)
                    else None
                )
                patients.append(
                    (
                        patient_id,
                        user_id,
                        rng.choice(FIRST_NAMES),
                        rng.choice(LAST_NAMES),
                        f"+49151{rng.randint(1000000, 9999999)}",
                        birth,
                        rng.choices("fmdx", (60, 37, 1, 2))[0],
                        place.code,
                        place.lat,
                        place.lon,
                        max_km,
                        lmask,
                        rng.choices(("any", "f", "m", "d"), (70, 22, 7, 1))[0],
                        methods,
                        rng.choices(("gkv", "pkv", "beihilfe", "self"), (88, 9, 2, 1))[0],
                        rng.choices(("acceptable", "wanted", "no"), (55, 15, 30))[0],
                        rng.choices(("no", "acceptable", "wanted"), (60, 30, 10))[0],
                        False,  # needs_accessible_room
                        status,
                        paused_until,
                        created
                        if status == "active"
                        else now - dt.timedelta(days=rng.randint(1, 60)),
                        "practice_link"
                        if rng.random() < 0.1
                        else ("secretariat" if user_id is None else "self"),
                        None if user_id else secretary_id,
                        None if user_id else secretary_id,
                        created,
                        created,
                        created,
                        now - dt.timedelta(days=rng.randint(0, 20), minutes=rng.randint(0, 1439)),
                        stage,
                        ptv11,
                    )
                )
                k = rng.choices((1, 2, 3), (70, 22, 8))[0]
                problems = set(rng.choices(problem_codes, cum_weights=problem_cum, k=k))
                urgent = rng.random() < 0.12
                clinical.append(
                    (
                        patient_id,
                        PROBLEM_AREAS.to_mask(problems),
                        rng.choice(DESCRIPTIONS),
                        urgent,
                        f"PTV11-{rng.randint(100000, 999999)}" if urgent else "",
                        created,
                    )
                )
                windows = _availability(rng)
                for weekday, start, end in windows:
                    avail_id += 1
                    avail.append((avail_id, patient_id, weekday, start, end))
                # Waitlists: practice lists near home, the regional pool, old removed entries.
                dists, ids = near.of(place)
                reach = bisect.bisect_right(dists, max_km)
                n_lists = min(reach, rng.choices((0, 1, 2, 3, 4, 5), (35, 25, 20, 12, 5, 3))[0])
                picks = rng.sample(ids[: min(reach, 4 * n_lists + 6)], n_lists) if n_lists else []
                entry_status = "removed" if status == "booked" else "active"
                reason = "booked_elsewhere" if status == "booked" else None
                for practice_id in picks:
                    entry_id += 1
                    added = created + dt.timedelta(
                        days=rng.randint(0, min(30, waited - 1)) if waited > 1 else 0
                    )
                    entries.append(
                        (
                            entry_id,
                            patient_id,
                            practice_id,
                            entry_status,
                            rng.choices((0, 1, 2), (90, 8, 2))[0],
                            rng.random() < 0.1,
                            added,
                            now - dt.timedelta(days=rng.randint(1, 30)) if reason else None,
                            reason,
                        )
                    )
                if not picks or rng.random() < 0.3:
                    entry_id += 1
                    entries.append(
                        (
                            entry_id,
                            patient_id,
                            None,
                            entry_status,
                            0,
                            False,
                            created,
                            now - dt.timedelta(days=rng.randint(1, 30)) if reason else None,
                            reason,
                        )
                    )
                # The hard filters' columns (ptmatch.domain.match_columns): every account here is
                # verified and enabled, every caller's consent recorded, both consents given.
                patients[-1] += (
                    status == "active",
                    entry_status == "active" and entries[-1][2] is None,  # the pool entry
                    *match_columns.day_masks(windows),
                )
                if rng.random() < 0.1 and reach > len(picks):
                    left = [p for p in ids[: min(reach, 20)] if p not in picks]
                    if left:
                        entry_id += 1
                        entries.append(
                            (
                                entry_id,
                                patient_id,
                                rng.choice(left),
                                "removed",
                                0,
                                False,
                                created,
                                created + dt.timedelta(days=rng.randint(0, max(0, waited - 1))),
                                rng.choice(("left", "removed_by_practice", "referred")),
                            )
                        )
            writer.write("users", USER_COLS, users)
            writer.write("patients", PATIENT_COLS, patients)
            writer.write("patient_clinical", CLINICAL_COLS, clinical)
            writer.write("availability", AVAIL_COLS, avail)
            writer.write("waitlist_entries", ENTRY_COLS, entries)
            done += n
            if progress:
                progress(n)
        _move_sequences(conn)
        if deferred:
            _create_indexes(conn, deferred, progress_note)
    summary.rows = dict(writer.rows)
    summary.seconds = time.perf_counter() - started
    return summary


def _write_postcodes(writer: BulkWriter, region: Region, path: Path | None) -> None:
    """The whole postcode table (the app looks codes up), or the grid when the file is missing."""
    from ptmatch.bench.geography import DEFAULT_POSTCODES
    from ptmatch.domain.geo import parse_geonames

    path = path or DEFAULT_POSTCODES
    rows = []
    if path.exists() and region.source == path.name:
        with open(path, encoding="utf-8", newline="") as fh:
            for i, r in enumerate(parse_geonames(fh), 1):
                rows.append((i, r["code"], r["place"], r["state"], r["lat"], r["lon"]))
    else:
        rows = [(i, p.code, p.place, p.state, p.lat, p.lon) for i, p in enumerate(region.places, 1)]
    writer.write("postcodes", ["id", "code", "place", "state", "lat", "lon"], rows)


STAFF_TOTP_SECRET = "JBSWY3DPEHPK3PXPBENCHAAAAAAAAAAA"  # staff need 2FA to post; nobody logs in


def _user_row(
    user_id: int, email: str, role: str, created: dt.datetime, locale: str = "de"
) -> tuple:
    staff = role != "patient"
    return (
        user_id,
        email,
        None,
        role,
        "",
        locale,
        True,
        created,
        created,
        1,
        0,
        STAFF_TOTP_SECRET if staff else None,
        created if staff else None,
    )


def _therapist_row(
    rng: random.Random,
    tid: int,
    pid: int,
    now: dt.datetime,
    excl_codes,
    excl_cum,
    lang2_codes,
    lang2_cum,
) -> tuple:
    main = rng.choices(("vt", "tp", "ap", "st"), (55, 35, 6, 4))[0]
    methods = {main}
    if rng.random() < 0.15:
        methods.add(rng.choice(("vt", "tp", "st")))
    for extra, share in (
        ("emdr", 0.12),
        ("dbt", 0.08),
        ("schema", 0.1),
        ("act", 0.06),
        ("cbasp", 0.04),
    ):
        if rng.random() < share:
            methods.add(extra)
    specialties = set(rng.sample([c for c, _ in PROBLEM_WEIGHTS], rng.randint(2, 5)))
    exclusions = set()
    if rng.random() < 0.5:
        exclusions = (
            set(rng.choices(excl_codes, cum_weights=excl_cum, k=rng.randint(1, 2))) - specialties
        )
    if rng.random() < 0.2:  # child and youth therapist
        populations = ["children", "adolescents"] + (["families"] if rng.random() < 0.3 else [])
    else:
        populations = (
            ["adults"]
            + (["seniors"] if rng.random() < 0.7 else [])
            + (["adolescents"] if rng.random() < 0.1 else [])
            + (["couples"] if rng.random() < 0.05 else [])
        )
    languages = {"de"}
    for _ in range(rng.choices((0, 1, 2), (60, 32, 8))[0]):
        languages.add(rng.choices(lang2_codes, cum_weights=lang2_cum)[0])
    if rng.random() < 0.8:
        insurances = INSURANCES.all_mask
    else:
        insurances = INSURANCES.to_mask(["pkv", "beihilfe", "self"])
    video = rng.random() < 0.55
    in_person = (not video) or rng.random() < 0.97
    return (
        tid,
        tid,
        pid,
        "Dr." if rng.random() < 0.2 else "",
        rng.choices("fmd", (75, 24, 1))[0],
        "Psychologische Psychotherapeutin (Approbation)",
        "",
        now - dt.timedelta(days=390),
        METHODS.to_mask(methods),
        PROBLEM_AREAS.to_mask(specialties),
        PROBLEM_AREAS.to_mask(exclusions),
        POPULATIONS.to_mask(populations),
        LANGUAGES.to_mask(languages),
        insurances,
        in_person,
        video,
        rng.random() < 0.15,
        50,
        10,
        15,
    )


PRACTICE_COLS = [
    "id",
    "name",
    "slug",
    "street",
    "postcode",
    "city",
    "lat",
    "lon",
    "phone",
    "website",
    "booking_info",
    "cancellation_policy",
    "video_link_template",
    "accepts_pool",
    "cancel_notice_hours",
    "offer_cutoff_minutes",
    "is_active",
    "created_at",
]
USER_COLS = [
    "id",
    "email",
    "password_hash",
    "role",
    "display_name",
    "locale",
    "is_enabled",
    "created_at",
    "email_verified_at",
    "session_version",
    "failed_logins",
    "totp_secret",
    "totp_confirmed_at",
]
THERAPIST_COLS = [
    "id",
    "user_id",
    "practice_id",
    "title",
    "gender",
    "approbation",
    "lanr",
    "approved_at",
    "methods_mask",
    "specialties_mask",
    "exclusions_mask",
    "populations_mask",
    "languages_mask",
    "insurances_mask",
    "offers_in_person",
    "offers_video",
    "offers_group",
    "session_minutes",
    "buffer_minutes",
    "switch_buffer_minutes",
]
PATIENT_COLS = [
    "id",
    "user_id",
    "first_name",
    "last_name",
    "phone",
    "birth_date",
    "gender",
    "postcode",
    "lat",
    "lon",
    "max_distance_km",
    "languages_mask",
    "therapist_gender_wish",
    "methods_mask",
    "insurance",
    "video_pref",
    "group_pref",
    "needs_accessible_room",
    "status",
    "paused_until",
    "status_changed_at",
    "registered_via",
    "registered_by_id",
    "consent_recorded_by_id",
    "consent_health_at",
    "consent_rules_at",
    "created_at",
    "last_confirmed_at",
    "care_stage",
    "ptv11_date",
    "matchable",
    "in_pool",
    *AVAIL_COLUMNS,
]
CLINICAL_COLS = [
    "patient_id",
    "problems_mask",
    "description",
    "urgent",
    "urgency_code",
    "updated_at",
]
AVAIL_COLS = ["id", "patient_id", "weekday", "start_min", "end_min"]
ENTRY_COLS = [
    "id",
    "patient_id",
    "practice_id",
    "status",
    "priority",
    "via_practice_link",
    "added_at",
    "removed_at",
    "removed_reason",
]
