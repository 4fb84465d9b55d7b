"""Shared column helpers for the models."""

from __future__ import annotations

import enum

from sqlalchemy import Enum as SAEnum


def enum_column(enum_cls: type[enum.Enum]) -> SAEnum:
    """A string-valued enum column (VARCHAR on both engines, no native PG type to migrate)."""
    return SAEnum(
        enum_cls,
        native_enum=False,
        create_constraint=False,
        length=24,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )
