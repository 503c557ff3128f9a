"""Errors a caller may catch without importing the training stack (a Ray Train driver process stays light)."""


class DivergenceError(RuntimeError):
    """The loss became NaN or infinite."""
