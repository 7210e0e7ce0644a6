"""Documented bounds on values that come from users, checked before anything is allocated or run.

A size that is merely large (a config field of 1e9, a metric's ``codebook_size`` of 1e12, a million pipeline
samples) used to be accepted and then fail deep inside torch, after gigabytes were allocated, with a message that did
not name the argument. These bounds are far above every shipped setting; a request past one is refused with a
``ValueError`` naming the argument, its value, the bound and what to do instead (``TypeError`` for a wrong type).

=========================  ==========  ==================================================================
bound                      value       applies to
=========================  ==========  ==================================================================
``MAX_SEED``               2**32 - 1   seeds (numpy, Python's ``random`` and the builders accept [0, 2**32))
``MIN_TEMPERATURE``        1e-4        sampling temperatures (below it logits / T overflow; use top_k=1)
``MAX_TEMPERATURE``        1e4         sampling temperatures (above it sampling is uniform noise)
``MAX_CONFIG_SIZE``        2**20       every integer field of a model config (sizes, counts, ids)
``MAX_CODEBOOK_SIZE``      2**24       ``codebook_size`` of the usage metrics and meters (one count per code)
``MAX_NUM_SAMPLES``        4096        samples per pipeline call (call again for more)
``MAX_NUM_PROC``           256         worker processes of dataset preparation
=========================  ==========  ==================================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = [
    "MAX_CODEBOOK_SIZE",
    "MAX_CONFIG_SIZE",
    "MAX_NUM_PROC",
    "MAX_NUM_SAMPLES",
    "MAX_SEED",
    "MAX_TEMPERATURE",
    "MIN_TEMPERATURE",
    "check_config_sizes",
    "check_int",
    "check_seed",
    "check_temperature",
]

MAX_SEED = 2**32 - 1
MIN_TEMPERATURE = 1e-4
MAX_TEMPERATURE = 1e4
MAX_CONFIG_SIZE = 2**20
MAX_CODEBOOK_SIZE = 2**24
MAX_NUM_SAMPLES = 4096
MAX_NUM_PROC = 256


def check_int(value, name: str, low: int = 1, high: int | None = None, hint: str = "") -> int:
    """``value`` as an integer in ``[low, high]``: ``TypeError`` for a non-integer (bools included), ``ValueError``
    naming ``name`` outside the range (``hint`` says what to do instead)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name}={value!r}: expected an integer, got {type(value).__name__}.")
    if value < low or (high is not None and value > high):
        upper = f" and <= {high}" if high is not None else ""
        raise ValueError(f"{name}={value!r}: expected an integer >= {low}{upper}{'; ' + hint if hint else ''}.")
    return value


def check_seed(value, name: str = "seed") -> int:
    """A seed in ``[0, MAX_SEED]``."""
    return check_int(value, name, 0, MAX_SEED, "seeds are 32-bit unsigned integers")


def check_temperature(value, name: str = "temperature") -> float:
    """A sampling temperature in ``[MIN_TEMPERATURE, MAX_TEMPERATURE]`` (smaller ones overflow the scaled logits)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name}={value!r}: expected a number, got {type(value).__name__}.")
    if not (math.isfinite(value) and MIN_TEMPERATURE <= value <= MAX_TEMPERATURE):
        raise ValueError(
            f"{name}={value!r}: expected a finite number in [{MIN_TEMPERATURE:g}, {MAX_TEMPERATURE:g}]; for the "
            "most likely tokens use top_k=1 rather than a tiny temperature."
        )
    return float(value)


def check_config_sizes(config: Mapping, owner: str, _path: str = "") -> None:
    """Every integer field of ``config`` (nested sub-configs and lists included) is at most ``MAX_CONFIG_SIZE``;
    ``ValueError`` naming the field otherwise, before the model allocates anything."""
    items = config.items() if isinstance(config, Mapping) else enumerate(config)
    for key, value in items:
        field = f"{_path}[{key!r}]" if _path else str(key)
        if isinstance(value, (Mapping, list, tuple)):
            check_config_sizes(value, owner, field)
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_CONFIG_SIZE:
            raise ValueError(
                f"{owner}: {field}={value!r} is larger than MAX_CONFIG_SIZE={MAX_CONFIG_SIZE} "
                "(mmquant.limits); a model that size would not fit in memory. Check the value (a typo, or a "
                "number of samples given as a size?)."
            )
