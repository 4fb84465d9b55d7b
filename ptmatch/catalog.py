"""The one list of every catalogue: problem areas, methods, populations, languages, insurances.

Multi-valued profile fields are stored as integer bit masks, so the matching prefilter can
test "no exclusion touches the problem areas" in SQL on both engines:
``(problems_mask & :exclusions) = 0``. Each entry has a fixed bit: append new entries with
a new bit, never renumber or reuse one.

Labels are German msgids (the UI is German first) marked with ``N_`` for extraction and
translated where they are shown (``_()`` in templates and forms).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


def N_(text: str) -> str:  # noqa: N802 - gettext marker, translated at display time
    return text


@dataclass(frozen=True)
class Entry:
    code: str
    bit: int
    label: str


class Catalogue:
    def __init__(self, name: str, entries: list[Entry]):
        self.name = name
        self.entries = entries
        self.by_code = {e.code: e for e in entries}
        assert len(self.by_code) == len(entries), f"duplicate code in {name}"
        assert len({e.bit for e in entries}) == len(entries), f"duplicate bit in {name}"
        assert all(0 <= e.bit < 62 for e in entries)

    def codes(self) -> list[str]:
        return [e.code for e in self.entries]

    def choices(self) -> list[tuple[str, str]]:
        return [(e.code, e.label) for e in self.entries]

    def to_mask(self, codes: Iterable[str]) -> int:
        mask = 0
        for code in codes:
            mask |= 1 << self.by_code[code].bit
        return mask

    def from_mask(self, mask: int | None) -> list[str]:
        mask = mask or 0
        return [e.code for e in self.entries if mask & (1 << e.bit)]

    def labels(self, mask: int | None) -> list[str]:
        mask = mask or 0
        return [e.label for e in self.entries if mask & (1 << e.bit)]

    def label(self, code: str) -> str:
        entry = self.by_code.get(code)
        return entry.label if entry else code

    @property
    def all_mask(self) -> int:
        return self.to_mask(self.codes())


def _cat(name: str, pairs: list[tuple[str, str]]) -> Catalogue:
    return Catalogue(name, [Entry(code, i, label) for i, (code, label) in enumerate(pairs)])


PROBLEM_AREAS = _cat(
    "problem_areas",
    [
        ("depression", N_("Depression")),
        ("anxiety", N_("Angst / Panik")),
        ("trauma", N_("Trauma / PTBS")),
        ("ocd", N_("Zwang")),
        ("eating", N_("Essstörung")),
        ("addiction", N_("Sucht")),
        ("personality", N_("Persönlichkeitsstörung")),
        ("psychosis", N_("Psychose")),
        ("adhd", N_("ADHS")),
        ("couples_family", N_("Paar / Familie")),
        ("grief", N_("Trauer")),
        ("burnout", N_("Burnout / Erschöpfung")),
        ("psychosomatic", N_("Psychosomatik / Schmerz")),
        ("sleep", N_("Schlafstörung")),
        ("self_harm", N_("Selbstverletzung")),
        ("autism", N_("Autismus")),
        ("bipolar", N_("Bipolare Störung")),
        ("sexual", N_("Sexuelle Störung")),
    ],
)

METHODS = _cat(
    "methods",
    [
        ("vt", N_("Verhaltenstherapie")),
        ("tp", N_("Tiefenpsychologisch fundierte Therapie")),
        ("ap", N_("Analytische Psychotherapie")),
        ("st", N_("Systemische Therapie")),
        ("emdr", N_("EMDR")),
        ("dbt", N_("DBT")),
        ("schema", N_("Schematherapie")),
        ("act", N_("ACT")),
        ("cbasp", N_("CBASP")),
    ],
)

# The four psychotherapy procedures billed by the statutory insurance (Richtlinienverfahren).
MAIN_METHODS = ("vt", "tp", "ap", "st")

POPULATIONS = _cat(
    "populations",
    [
        ("children", N_("Kinder")),
        ("adolescents", N_("Jugendliche")),
        ("adults", N_("Erwachsene")),
        ("seniors", N_("Ältere Menschen")),
        ("couples", N_("Paare")),
        ("families", N_("Familien")),
    ],
)

LANGUAGES = _cat(
    "languages",
    [
        ("de", N_("Deutsch")),
        ("en", N_("Englisch")),
        ("tr", N_("Türkisch")),
        ("ar", N_("Arabisch")),
        ("ru", N_("Russisch")),
        ("pl", N_("Polnisch")),
        ("uk", N_("Ukrainisch")),
        ("fa", N_("Persisch")),
        ("fr", N_("Französisch")),
        ("es", N_("Spanisch")),
        ("it", N_("Italienisch")),
        ("ku", N_("Kurdisch")),
        ("sgn", N_("Deutsche Gebärdensprache")),
    ],
)

INSURANCES = _cat(
    "insurances",
    [
        ("gkv", N_("Gesetzlich (GKV)")),
        ("pkv", N_("Privat (PKV)")),
        ("beihilfe", N_("Beihilfe")),
        ("self", N_("Selbstzahlend")),
    ],
)

GENDERS = [
    ("f", N_("weiblich")),
    ("m", N_("männlich")),
    ("d", N_("divers")),
    ("x", N_("keine Angabe")),
]
THERAPIST_GENDER_WISHES = [
    ("any", N_("egal")),
    ("f", N_("Therapeutin")),
    ("m", N_("Therapeut")),
    ("d", N_("divers")),
]
PREFERENCE = [("wanted", N_("gewünscht")), ("acceptable", N_("möglich")), ("no", N_("nein"))]
# What the patient is looking for (models.CareStage), as the registration form asks it.
CARE_STAGES = [
    ("sprechstunde", N_("eine erste Sprechstunde")),
    ("therapy", N_("einen Therapieplatz nach der Sprechstunde (ich habe ein Formular PTV 11)")),
    ("group", N_("einen Platz in einer Gruppe")),
    ("any", N_("egal – alles davon")),
]
# PTV 11: the form of care the Sprechstunde recommends (PatientClinical.ptv11_care).
PTV11_CARE = [
    ("", N_("keine Angabe")),
    ("akut", N_("Akutbehandlung")),
    ("einzel", N_("Psychotherapie (einzeln)")),
    ("gruppe", N_("Psychotherapie in der Gruppe")),
    ("andere", N_("andere Empfehlung")),
]
WEEKDAYS = [
    N_("Montag"),
    N_("Dienstag"),
    N_("Mittwoch"),
    N_("Donnerstag"),
    N_("Freitag"),
    N_("Samstag"),
    N_("Sonntag"),
]

CATALOGUES = {c.name: c for c in (PROBLEM_AREAS, METHODS, POPULATIONS, LANGUAGES, INSURANCES)}


def population_for_age(age: int) -> str:
    if age < 14:
        return "children"
    if age < 18:
        return "adolescents"
    if age < 65:
        return "adults"
    return "seniors"
