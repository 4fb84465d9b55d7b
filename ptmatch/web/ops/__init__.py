"""Operations endpoints: /readyz and /metrics (machine readers, no UI)."""
