"""The simulator's inputs: a region preset (or a TOML file), the behaviour model, the policies.

The numbers are assumptions, documented with their sources in SIMULATION.md. A TOML file
overrides any field of ``Region`` by name, e.g.::

    name = "my-town"
    practices = 12
    slots_per_week = 2.5
    p_answer = 0.8
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ptmatch.config import DEFAULT_WAVE_RULES


@dataclass(frozen=True)
class Region:
    name: str
    practices: int  # about this many practices (1-3 therapists each, as the bench generator)
    waiting: int  # active patients on the lists at the start
    arrivals_per_week: float  # new patients registering
    slots_per_week: float  # freed slots the therapists post (cancellations, free places)
    # kind -> share of the posted slots
    kinds: dict[str, float] = field(
        default_factory=lambda: {
            "sprechstunde": 0.45,
            "probatorik": 0.2,
            "therapy_place": 0.3,
            "akut": 0.05,
        }
    )
    # lead time from posting to the start: (share, min days, max days)
    lead_days: tuple[tuple[float, float, float], ...] = (
        (0.35, 0.5, 3.0),
        (0.45, 3.0, 14.0),
        (0.20, 14.0, 42.0),
    )
    # a patient holds a PTV 11 form when registering (a Sprechstunde elsewhere): they look for
    # Probatorik / Akut / a therapy place; the others for a Sprechstunde first. Urgent patients
    # (the generator's 12 %) always hold one: urgency is a box on that form.
    p_ptv11: float = 0.5
    ptv11_max_days_before: float = 28.0  # the form dates from 0 .. this many days before
    p_answer: float = 0.85  # a patient answers an offer at all (else it expires)
    answer_median_hours: float = 3.0  # lognormal delay while awake (07-22 Berlin)
    answer_sigma: float = 1.2
    p_decline: float = 0.3  # an answer is a no (time does not fit after all, ...)
    phone_only: float = 0.05  # callers without e-mail: the secretariat calls them in office hours
    p_no_show: float = 0.05
    p_cancel: float = 0.04  # a booking the patient cancels again (re-posted by the domain)
    p_checkin_confirm: float = 0.8  # "still looking?" answered


PRESETS = {
    # Bonn: ~20 colleagues, one central appointment office, 134 places in 2018.
    "bonn": Region(name="bonn", practices=20, waiting=600, arrivals_per_week=8, slots_per_week=3.0),
    "city": Region(
        name="city", practices=100, waiting=3000, arrivals_per_week=40, slots_per_week=15.0
    ),
    # For tests: a handful of practices, a short list, many slots.
    "tiny": Region(name="tiny", practices=3, waiting=60, arrivals_per_week=4, slots_per_week=8.0),
}


def load_region(preset: str | None, path: Path | None) -> Region:
    """A preset, or a TOML file (``preset = "bonn"`` inside picks the base to override)."""
    if path is None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r} (one of {', '.join(sorted(PRESETS))})")
        return PRESETS[preset]
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    base = PRESETS[data.pop("preset", preset or "bonn")]
    known = {f.name for f in dataclasses.fields(Region)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown fields in {path}: {', '.join(unknown)}")
    if "lead_days" in data:
        data["lead_days"] = tuple(tuple(row) for row in data["lead_days"])
    return dataclasses.replace(base, **data)


@dataclass(frozen=True)
class Policy:
    """An offer policy is a set of WAVE_RULES for the real offer machine: (max lead hours or
    None, offers open at once, minutes to answer)."""

    name: str
    wave_rules: tuple


POLICIES = (
    # ptmatch's adaptive broadcast: more offers, shorter deadlines, the sooner the slot.
    Policy("adaptive", DEFAULT_WAVE_RULES),
    # The classic phone tree: one patient at a time, a day to answer (2 h if it is tomorrow).
    Policy("sequential", ((24, 1, 120), (72, 1, 480), (None, 1, 1440))),
    # Everyone who fits at once (the machine's cap is 50 open offers per slot).
    Policy("everyone", ((24, 50, 60), (72, 50, 240), (None, 50, 720))),
)
