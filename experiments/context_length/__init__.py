r"""``lsa-theory context-length``: the context length ``n`` in both regimes of docs/theory.md §6,
the closed loop (S6) and one long context read by a deep stack: the face of the experiment.

Face: :data:`Config` (:class:`ContextLengthConfig`, frozen, with ``quick()`` and ``full()``: both
regimes' configurations), :func:`units` (its regimes), :func:`run_unit` (one regime's sweep),
:func:`run` and :func:`plot` (the figures, from saved results). The command is
:func:`run_context_length`.

Files: ``experiment.py`` (the face's configuration and run), ``closed_loop.py`` (the closed-loop
regime and the first fixed-updates sweep, block and teacher side by side), ``in_context.py`` (the
in-context regime: [LL]'s (S5) stack and [W]'s TD stack on prefixes of one trajectory),
``common.py`` (the regimes and the checks of the sequences), ``plots.py`` (the figures).
"""

from __future__ import annotations

from .closed_loop import ClosedLoopConfig, closed_loop_sweep, context_length_sweep
from .common import IN_CONTEXT_STREAM, REGIMES
from .experiment import (
    ContextLengthConfig,
    plot_regimes,
    regime_config,
    run,
    run_context_length,
    run_unit,
    units,
)
from .in_context import InContextConfig, in_context_sweep, stack_values, td_stack_values
from .plots import plot_context_length, plot_context_length_regimes

__all__ = [
    "Config",
    "units",
    "run_unit",
    "run",
    "plot",
    "ContextLengthConfig",
    "REGIMES",
    "IN_CONTEXT_STREAM",
    "ClosedLoopConfig",
    "InContextConfig",
    "closed_loop_sweep",
    "in_context_sweep",
    "stack_values",
    "td_stack_values",
    "regime_config",
    "run_context_length",
    "context_length_sweep",
    "plot_context_length",
    "plot_context_length_regimes",
]

#: The face of the experiment: its configuration and figures.
Config = ContextLengthConfig
plot = plot_regimes
