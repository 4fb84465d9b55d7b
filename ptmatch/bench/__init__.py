"""Benchmarks: a synthetic region generator and the figures of `ptmatch bench`.

- `geography`: real German postcodes (GeoNames file) or a synthetic grid around Bonn.
- `generate`: practices, therapists and patients in bulk, with a fixed seed.
- `matching`, `mail`, `server`: the measured figures.
- `runner`: runs a benchmark end to end; `report`: table and JSON.

Nothing here is imported by the web app or the scheduler.
"""
