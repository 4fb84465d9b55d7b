"""German postcodes with coordinates (GeoNames postal-code format); codes can repeat."""

from __future__ import annotations

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from ptmatch.db import Base


class Postcode(Base):
    __tablename__ = "postcodes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(10), index=True)
    place: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(100), default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
