"""A progress bar for training loops that stays out of CI logs.

    bar = progress(steps, desc="dcgan")
    for step in bar:
        ...
        bar.set_postfix(loss_d=f"{loss_d:.3f}", loss_g=f"{loss_g:.3f}")

On a terminal this is a tqdm bar with step, speed and the postfix values. When stderr is not
a terminal (CI, a redirected log) it is disabled, unless asked for with ``disable=False``.
"""
import sys

from tqdm import tqdm


def progress(iterable_or_total, desc=None, disable=None, **tqdm_options):
    """A tqdm bar over an iterable, or over range(total) when given an int."""
    if isinstance(iterable_or_total, int):
        iterable_or_total = range(iterable_or_total)
    if disable is None:
        disable = not _stderr_is_terminal()
    return tqdm(iterable_or_total, desc=desc, disable=disable, dynamic_ncols=True, **tqdm_options)


def _stderr_is_terminal():
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False
