"""Silence progress bars and config chatter of datasets and transformers around cache writes and loads.

A training prints one line per evaluation point; library bars in between would bury them. (Loading a small
SigLIP checkpoint also logs that SigLIP's default bos/eos ids fall outside a 32k vocabulary: the defaults of
a config that the saved one then replaces.)
"""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def no_progress_bars():
    import datasets.utils.logging as ds_log
    import transformers.utils.logging as tf_log

    ds_was, tf_was = ds_log.is_progress_bar_enabled(), tf_log.is_progress_bar_enabled()
    verbosity = tf_log.get_verbosity()
    ds_log.disable_progress_bar()
    tf_log.disable_progress_bar()
    tf_log.set_verbosity_error()
    try:
        yield
    finally:
        tf_log.set_verbosity(verbosity)
        if ds_was:
            ds_log.enable_progress_bar()
        if tf_was:
            tf_log.enable_progress_bar()
