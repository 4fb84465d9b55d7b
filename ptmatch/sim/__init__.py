"""The regional simulator (`ptmatch simulate`): see SIMULATION.md."""
