"""Errors the command line reports in one line (exit code 2) instead of a traceback."""


class NotFound(Exception):
    """The store holds no such experiment, sweep or run."""


class Ambiguous(Exception):
    """A sweep name the store holds in several experiments: the user names one with --experiment."""


class SweepBusy(Exception):
    """Another live driver runs this sweep (sweeps/lease.py)."""
