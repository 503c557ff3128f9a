"""Ctrl-C stops the whole sweep, once, and says so: the driver owns SIGINT for the length of a launch.

Tune's own handler is not enough: it ends only the Tuner that runs (a search runs one Tuner per grid cell,
and the next one would start), and a trial it stops returns like one ASHA stopped, which the driver would
close FINISHED. Here the first Ctrl-C sets `requested`; Tune sees it through `stop_all` and stops every
trial, the driver launches no further Tuner and settles what was cut short (`sweeps.driver`). A second
Ctrl-C quits at once; the next `run` or `resume` then fails what it left RUNNING.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

from ray import tune

TUNE_OWN_HANDLER = "TUNE_DISABLE_SIGINT_HANDLER"  # Ray Tune's documented switch for its SIGINT handler


class Interrupt(tune.Stopper):
    """A Tune stopper that stops every trial once the sweep is interrupted, and no trial before."""

    def __init__(self):
        self.requested = False

    def __call__(self, trial_id, result) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.requested


@contextlib.contextmanager
def catch_ctrl_c(progress=print):
    """Yield an `Interrupt` that the first SIGINT sets; restore the previous handler on the way out.

    Off the main thread Python cannot take signals: the stopper is then never set, and Tune keeps its own.
    """
    stop = Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous, tune_own = signal.getsignal(signal.SIGINT), os.environ.get(TUNE_OWN_HANDLER)

    def on_sigint(signum, frame):
        stop.requested = True
        signal.signal(signal.SIGINT, previous)
        progress("interrupted: stopping the running trials (Ctrl-C again quits at once)")

    signal.signal(signal.SIGINT, on_sigint)
    os.environ[TUNE_OWN_HANDLER] = "1"
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
        if tune_own is None:
            os.environ.pop(TUNE_OWN_HANDLER, None)
        else:
            os.environ[TUNE_OWN_HANDLER] = tune_own
