"""The scheduler: idempotent jobs `(session, now, settings) -> count`, run in their own process."""
