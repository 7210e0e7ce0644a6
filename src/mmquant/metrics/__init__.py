"""Metrics: pure functions in ``functional``; evaluate modules in the folders beside it."""
