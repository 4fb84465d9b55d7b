"""Geography for the synthetic region: real German postcodes, or a grid when the file is missing.

The region grows with the benchmark size so that the density of patients stays that of a
real network: 1 M active patients is roughly everyone waiting for psychotherapy in
Germany, so a run with N patients takes the postcodes nearest to the centre (Bonn) until
they hold N / 1 M of all postcode rows. Postcodes are weighted by their row count in the
GeoNames file (a city has many rows per code, a village one), for patients and practices
alike; that is the proxy for population the data offers.
"""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from pathlib import Path

DEFAULT_POSTCODES = Path(__file__).resolve().parents[3] / "shared" / "data" / "postcodes-DE.txt"
CENTRE = (50.7374, 7.0982)  # Bonn
NATION_PATIENTS = 1_000_000  # active patients of a Germany-wide network


@dataclass(frozen=True)
class Place:
    code: str
    place: str
    state: str
    lat: float
    lon: float
    weight: int  # rows in the postcode file


@dataclass
class Region:
    places: list[Place]
    source: str  # "postcodes-DE.txt" or "synthetic grid"
    radius_km: float
    cum_weights: list[int]

    def sample(self, rng: random.Random) -> Place:
        return rng.choices(self.places, cum_weights=self.cum_weights, k=1)[0]

    def sample_many(self, rng: random.Random, k: int) -> list[Place]:
        return rng.choices(self.places, cum_weights=self.cum_weights, k=k)


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 12742.0 * math.asin(min(1.0, math.sqrt(a)))


def load_places(path: Path) -> list[Place]:
    """One Place per postcode: mean coordinates of its rows, weight = number of rows."""
    rows: dict[str, list] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if len(row) < 11 or not row[9] or not row[10]:
                continue
            code = row[1].strip()
            entry = rows.setdefault(code, [row[2], row[3], 0.0, 0.0, 0])
            entry[2] += float(row[9])
            entry[3] += float(row[10])
            entry[4] += 1
    return [
        Place(code, place, state, lat / n, lon / n, n)
        for code, (place, state, lat, lon, n) in rows.items()
    ]


def synthetic_places(radius_km: float) -> list[Place]:
    """A grid (about 2 km spacing) around Bonn, denser towards the centre like a city."""
    lat0, lon0 = CENTRE
    dlat = 2.0 / 111.2
    dlon = 2.0 / (111.2 * math.cos(math.radians(lat0)))
    steps = int(radius_km / 2.0) + 1
    places = []
    n = 0
    for i in range(-steps, steps + 1):
        for j in range(-steps, steps + 1):
            lat, lon = lat0 + i * dlat, lon0 + j * dlon
            d = distance_km(lat0, lon0, lat, lon)
            if d > radius_km:
                continue
            n += 1
            weight = 1 + int(9 * math.exp(-d / 8.0))
            places.append(
                Place(
                    f"9{n:04d}",
                    f"Rasterort {n}",
                    "Synthetisch",
                    round(lat, 4),
                    round(lon, 4),
                    weight,
                )
            )
    return places


def region_for(size: int, path: Path | None = None) -> Region:
    """The places of a region holding `size` active patients at a realistic density."""
    path = path or DEFAULT_POSTCODES
    share = min(1.0, max(size, 1) / NATION_PATIENTS)
    if path.exists():
        places = load_places(path)
        source = path.name
    else:
        # Germany holds ~1 M waiting patients on ~357,000 km²; keep that density.
        area = 357_000 * share
        places = synthetic_places(max(10.0, math.sqrt(area / math.pi)))
        source = "synthetic grid"
    lat0, lon0 = CENTRE
    places.sort(key=lambda p: distance_km(lat0, lon0, p.lat, p.lon))
    if source == "synthetic grid":
        chosen = places  # already sized to the share
    else:
        total = sum(p.weight for p in places)
        chosen = []
        acc = 0
        for place in places:
            chosen.append(place)
            acc += place.weight
            if acc >= share * total:
                break
    radius = distance_km(lat0, lon0, chosen[-1].lat, chosen[-1].lon)
    cum = []
    acc = 0
    for place in chosen:
        acc += place.weight
        cum.append(acc)
    return Region(chosen, source, radius, cum)
