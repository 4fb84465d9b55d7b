"""Small statistics helpers and the "not built yet" marker."""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence


class Missing(Exception):
    """Code a figure measures does not exist yet (another issue is still building it)."""


def need(module: str, *names: str):
    """Import `module` and return its attributes `names`, or raise Missing."""
    try:
        mod = importlib.import_module(module)
    except ImportError as err:
        raise Missing(f"{module} not built yet") from err
    missing = [n for n in names if not hasattr(mod, n)]
    if missing:
        raise Missing(f"{module}.{', '.join(missing)} not built yet")
    return [getattr(mod, n) for n in names]


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def summary_ms(samples: Sequence[float]) -> dict:
    """p50 / p95 / max in milliseconds of samples in seconds."""
    return {
        "n": len(samples),
        "p50_ms": ms(percentile(samples, 50)),
        "p95_ms": ms(percentile(samples, 95)),
        "max_ms": ms(max(samples) if samples else None),
    }
