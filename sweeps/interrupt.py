"""Ctrl-C or SIGTERM stops the whole sweep, once, and says so: the driver owns both for the length of a launch.

Tune's own handler is not enough: it ends only the Tuner that runs (a search runs one Tuner per grid cell,
and the next one would start), and a trial it stops returns like one ASHA stopped, which the driver would
close FINISHED. Here the first Ctrl-C sets `requested`; Tune sees it through `stop_all` and stops every
trial, the driver launches no further Tuner and settles what was cut short (`sweeps.driver`). A second
Ctrl-C quits at once; the next `run` or `resume` then fails what it left RUNNING. SIGTERM — what `ray job
stop`, `kill` and batch schedulers send — is taken the same way: left to its default, it ended the driver at
once and left the parent run and every unfinished trial run RUNNING.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

from ray import tune

TUNE_OWN_HANDLER = "TUNE_DISABLE_SIGINT_HANDLER"  # Ray Tune's documented switch for its SIGINT handler
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupt(tune.Stopper):
    """A Tune stopper that stops every trial once the sweep is interrupted, and no trial before."""

    def __init__(self):
        self.requested = False
        self.signum = 0  # the signal that stopped the sweep (the command exits 128 + signum)

    def __call__(self, trial_id, result) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.requested


@contextlib.contextmanager
def catch_ctrl_c(progress=print):
    """Yield an `Interrupt` that the first SIGINT or SIGTERM sets; restore the previous handlers on the way out.

    Off the main thread Python cannot take signals: the stopper is then never set, and Tune keeps its own.
    """
    stop = Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous, tune_own = {s: signal.getsignal(s) for s in SIGNALS}, os.environ.get(TUNE_OWN_HANDLER)

    def restore():
        for s, handler in previous.items():
            signal.signal(s, handler)

    def on_signal(signum, frame):
        stop.requested, stop.signum = True, signum
        restore()  # a second signal acts as it would without us: quits at once
        progress(f"interrupted ({signal.Signals(signum).name}): stopping the running trials "
                 "(the same signal again quits at once)")

    for s in SIGNALS:
        signal.signal(s, on_signal)
    os.environ[TUNE_OWN_HANDLER] = "1"
    try:
        yield stop
    finally:
        restore()
        if tune_own is None:
            os.environ.pop(TUNE_OWN_HANDLER, None)
        else:
            os.environ[TUNE_OWN_HANDLER] = tune_own
