"""Job modules. Each defines `JOBS: list[Job]`; the runner discovers them all."""
