"""Operations: heartbeat, readiness checks, metrics, JSON logs and backups.

Below the scheduler and the web (they call it), beside the domain; never imports Flask.
"""
