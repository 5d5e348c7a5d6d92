"""The laboratory: settings from the command line, runs through the store, sweeps.

overrides.py  --set / --grid / -c FILE.toml, checked against an experiment's Config
runner.py     one experiment config through the run store: cache, train, record
sweep.py      the product of grid axes, and the executors that run its points
exporting.py  stored runs as CSV, JSON or MLflow runs
"""


class LabError(Exception):
    """A user's input or stored state that stops a command: one line, no traceback."""
