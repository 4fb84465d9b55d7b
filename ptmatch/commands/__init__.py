"""CLI commands per area; each module defines `register(main)` and is picked up by ptmatch.cli."""
