"""Postcodes and distance: coordinates for a German postcode, great-circle distance, and the
GeoNames postal-code import.

Fallback for a postcode that is not in the table (documented behaviour, used everywhere):

1. the exact code: the average of its rows (a code can repeat for several places);
2. else the average of all codes sharing its first three digits (a delivery area, ~10-20 km);
3. else the average of all codes sharing its first two digits (a postal region, ~50 km);
4. else no coordinates (lat/lon stay NULL): the patient or practice is not filtered by
   distance at all, and the UI flags the location as unknown (`Location.precision ==
   "unknown"`), so nobody is silently excluded because the table is incomplete or empty.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from ptmatch.models import Patient, Postcode, Practice

EARTH_RADIUS_KM = 6371.0088
POSTCODE_RE = re.compile(r"^\d{5}$")


@dataclass(frozen=True)
class Location:
    lat: float | None
    lon: float | None
    precision: str  # "exact" | "area3" | "area2" | "unknown"

    @property
    def known(self) -> bool:
        return self.lat is not None and self.lon is not None

    @property
    def approximate(self) -> bool:
        return self.precision in ("area3", "area2")


UNKNOWN = Location(None, None, "unknown")


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine) in kilometres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlam = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def distance_between(
    a_lat: float | None, a_lon: float | None, b_lat: float | None, b_lon: float | None
) -> float | None:
    """Distance in km, or None when either side has no coordinates (no distance filter)."""
    if a_lat is None or a_lon is None or b_lat is None or b_lon is None:
        return None
    return distance_km(a_lat, a_lon, b_lat, b_lon)


def bounding_box(lat: float, lon: float, km: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) enclosing a circle: a cheap SQL prefilter."""
    dlat = km / 111.2
    dlon = km / (111.2 * max(0.01, math.cos(math.radians(lat))))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


def is_valid_postcode(code: str) -> bool:
    return bool(POSTCODE_RE.match(code or ""))


def check_postcode_exists(session: Session, code: str, field: str = "postcode") -> None:
    """Refuse a postcode that matches nothing in the imported table, not even its region
    (a typo such as 99999 would otherwise switch the distance filter off without a word).
    With an empty table (nothing imported yet) every well-formed code passes."""
    from ptmatch.catalog import N_
    from ptmatch.domain.errors import InvalidInput

    if locate(session, code).known:
        return
    if session.scalar(select(Postcode.code).limit(1)) is None:
        return
    raise InvalidInput(N_("Diese Postleitzahl kennen wir nicht. Bitte prüfen Sie sie."), field)


def locate(session: Session, code: str) -> Location:
    """Coordinates for a postcode with the documented fallback (see the module docstring)."""
    code = (code or "").strip()
    if not code:
        return UNKNOWN
    row = session.execute(
        select(func.avg(Postcode.lat), func.avg(Postcode.lon)).where(Postcode.code == code)
    ).first()
    if row and row[0] is not None:
        return Location(float(row[0]), float(row[1]), "exact")
    for digits, precision in ((3, "area3"), (2, "area2")):
        if len(code) < digits:
            continue
        row = session.execute(
            select(func.avg(Postcode.lat), func.avg(Postcode.lon)).where(
                Postcode.code.like(code[:digits] + "%")
            )
        ).first()
        if row and row[0] is not None:
            return Location(float(row[0]), float(row[1]), precision)
    return UNKNOWN


def fill_missing_coordinates(session: Session) -> int:
    """Give practices and patients without coordinates the ones of their postcode (after an
    import)."""
    changed = 0
    cache: dict[str, Location] = {}
    for model in (Practice, Patient):
        rows = session.execute(
            select(model.id, model.postcode).where(model.lat.is_(None), model.postcode != "")
        ).all()
        for row_id, code in rows:
            loc = cache.get(code) or cache.setdefault(code, locate(session, code))
            if loc.known:
                obj = session.get(model, row_id)
                obj.lat, obj.lon = loc.lat, loc.lon
                changed += 1
    session.flush()
    return changed


# --- GeoNames import ----------------------------------------------------------------------


def parse_geonames(lines: Iterable[str]) -> Iterator[dict]:
    """Rows of the GeoNames postal-code format (tab separated: country, code, place, state,
    state code, county, county code, community, community code, lat, lon, accuracy)."""
    for fields in csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE):
        if len(fields) < 11 or not fields[1].strip():
            continue
        try:
            lat, lon = float(fields[9]), float(fields[10])
        except ValueError:
            continue
        if not (
            math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180
        ):
            continue
        yield {
            "code": fields[1].strip()[:10],
            "place": fields[2].strip()[:200],
            "state": fields[3].strip()[:100],
            "lat": lat,
            "lon": lon,
        }


def import_postcodes(
    session: Session, path: str | Path, *, batch_size: int = 5000, progress=None
) -> int:
    """Replace the postcode table with the rows of a GeoNames file; bulk inserts in batches.

    `progress(n)` is called after each batch with the number of rows just inserted.
    Flushes only; the caller commits (so a broken file leaves the old table in place).
    """
    session.execute(delete(Postcode))
    total = 0
    batch: list[dict] = []
    with open(path, encoding="utf-8", newline="") as fh:
        for row in parse_geonames(fh):
            batch.append(row)
            if len(batch) >= batch_size:
                session.execute(insert(Postcode), batch)
                total += len(batch)
                if progress:
                    progress(len(batch))
                batch = []
    if batch:
        session.execute(insert(Postcode), batch)
        total += len(batch)
        if progress:
            progress(len(batch))
    session.flush()
    return total


def count_lines(path: str | Path) -> int:
    with open(path, "rb") as fh:
        return sum(1 for _ in fh)
