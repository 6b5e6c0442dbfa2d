r"""Summary statistics of per-MDP scores with every run counted: mean and standard error, paired
Student-t intervals, and MDP-clustered paired intervals (the one home of these helpers for every
experiment).

Counting rule (issue 18, item 5): a closed loop that diverged (a non-finite entry: the loop stopped
at :data:`lsa_theory.experiments.control.DIVERGENCE_BOUND` or overflowed) is never dropped from a mean or an
interval. It is *scored* :data:`DIVERGED_SCORE` ``= 0``, the normalised return (§0) of the uniform
policy (a loop that diverged has no policy left; ``0`` is random play), and counted in
``n_diverged``. Every function returns the counts beside the statistic, so a table can print them.

Shapes: a score vector is ``(N,)`` over held-out MDPs; a clustered score matrix is ``(N, R)``, ``R``
loops (training seeds) per held-out MDP ``i``, the same MDP and stream for every loop of row ``i``.

- :func:`mean_sem`: ``mean_i x_i`` and ``s / sqrt(N)`` (``s`` the sample standard deviation).
- :func:`paired_ci`: for ``d_i = a_i - b_i`` over ALL ``N`` MDPs, ``mean(d) +- t_{N-1, (1+level)/2}
  s_d / sqrt(N)``.
- :func:`mean_sem_columns`: ``mean`` and ``s / sqrt(N)`` over axis 0 of ``x`` (N, ...), entries
  as they are (a non-finite entry is NOT scored: its column's statistics come out non-finite),
  s.e. ``0`` for ``N = 1``. The control curves and the (A6) step statistics, whose divergences
  are counted apart (``n_diverged``).
- :func:`mean_sem_finite`: mean and ``s / sqrt(N_ok)`` over the ``N_ok`` finite entries only, and
  the number left out (the context-length rows, which report that number as ``n_diverged``).
- :func:`paired_difference`: ``b - a`` (note the order) over the ``N_ok`` pairs where both are
  finite, ``mean(d) +- t_{N_ok-1} s_d / sqrt(N_ok)``: the context-length ``diff_prev``. It differs
  from :func:`paired_ci`, which scores a non-finite entry ``fill`` and keeps all ``N`` pairs.
- :func:`clustered_paired_ci`: the loops of one MDP are one cluster: ``abar_i = mean_r a_{ir}``
  (likewise ``b``), then :func:`paired_ci` of ``abar`` and ``bbar`` over the ``N`` clusters. Loops of
  one MDP share its dynamics and stream, so they are correlated; pooling ``N R`` loops as if
  independent understates the standard error (by up to ``sqrt(R)``).
"""

from __future__ import annotations

import numpy as np
import scipy.stats

from lsa_theory.checks import check_real

__all__ = [
    "DIVERGED_SCORE",
    "scored",
    "mean_sem",
    "mean_sem_columns",
    "mean_sem_finite",
    "paired_ci",
    "paired_difference",
    "clustered_paired_ci",
]

#: Score of a diverged loop: the normalised return (§0) of the uniform policy.
DIVERGED_SCORE = 0.0


def scored(x, fill: float = DIVERGED_SCORE) -> tuple[np.ndarray, int]:
    """``(x with every non-finite entry replaced by fill, the number replaced)``; any shape."""
    x = np.asarray(x, dtype=np.float64)
    bad = ~np.isfinite(x)
    return np.where(bad, float(fill), x), int(bad.sum())


def _vector(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"{name}: expected a vector (N,), got shape {x.shape}")
    return x


def mean_sem(x, fill: float = DIVERGED_SCORE) -> tuple[float | None, float | None]:
    """Mean and standard error of the mean of ``x`` (N,) over ALL entries, non-finite ones scored
    ``fill`` (:func:`scored`); ``(None, None)`` for ``N = 0``, s.e. ``None`` for ``N = 1``."""
    x, _ = scored(_vector(x, "x"), fill)
    if x.size == 0:
        return None, None
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else None


def mean_sem_columns(x) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over axis 0 of ``x`` (N, ...): ``x.mean(axis=0)`` and
    ``x.std(axis=0, ddof=1) / sqrt(N)``, shapes ``x.shape[1:]``, entries as they are (non-finite
    ones propagate, not scored); s.e. ``0`` for ``N = 1``."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(f"x: expected at least one row (N, ...), got shape {x.shape}")
    mean = x.mean(axis=0)
    sem = x.std(axis=0, ddof=1) / np.sqrt(x.shape[0]) if x.shape[0] > 1 else np.zeros_like(mean)
    return mean, sem


def mean_sem_finite(x) -> tuple[float | None, float | None, int]:
    """Mean and standard error over the finite entries of ``x`` (N,) (``None`` below one, resp.
    two, of them) and the number of non-finite entries left out."""
    x = _vector(x, "x")
    ok = x[np.isfinite(x)]
    mean = float(ok.mean()) if ok.size else None
    sem = float(ok.std(ddof=1) / np.sqrt(ok.size)) if ok.size > 1 else None
    return mean, sem, int(x.size - ok.size)


def paired_difference(a, b, level: float = 0.95) -> dict:
    """Mean of the paired differences ``b - a`` (both (N,), non-finite = missing) with a Student-t
    ``level`` confidence interval over the ``N_ok`` pairs where both are finite:
    ``{"mean", "ci": [lo, hi], "n_pairs"}`` (``None`` entries with fewer than two pairs)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a, b: expected two arrays of equal shape (N,), got {a.shape} and {b.shape}")
    level = check_real(level, "level", low=0.0, high=1.0, low_open=True, high_open=True)
    diff = (b - a)[np.isfinite(a) & np.isfinite(b)]
    if diff.size < 2:
        return {"mean": None, "ci": None, "n_pairs": int(diff.size)}
    m = float(diff.mean())
    half = float(scipy.stats.t.ppf(0.5 + level / 2, diff.size - 1) * diff.std(ddof=1) / np.sqrt(diff.size))
    return {"mean": m, "ci": [m - half, m + half], "n_pairs": int(diff.size)}


def paired_ci(a, b, level: float = 0.95, fill: float = DIVERGED_SCORE) -> dict:
    """Paired difference ``a - b`` (both (N,), the same MDPs in the same order) over ALL ``N`` MDPs,
    non-finite entries (diverged loops) scored ``fill``: ``mean``, ``sem``, ``ci_low``, ``ci_high``
    (Student-t with ``N - 1`` degrees of freedom at ``level``; ``None`` below two pairs), ``n`` (=
    ``N``), ``n_diverged_a``, ``n_diverged_b`` and ``diverged_score`` (= ``fill``)."""
    a, b = _vector(a, "a"), _vector(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a, b: expected equal shapes (N,), got {a.shape} and {b.shape}")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level: expected a confidence level in (0, 1), got {level}")
    (a, na), (b, nb) = scored(a, fill), scored(b, fill)
    diff = a - b
    n = int(diff.size)
    out = {"mean": float(diff.mean()) if n else None, "sem": None, "ci_low": None, "ci_high": None}
    out |= {"n": n, "n_diverged_a": na, "n_diverged_b": nb, "diverged_score": float(fill)}
    if n >= 2:
        sem = float(diff.std(ddof=1) / np.sqrt(n))
        q = float(scipy.stats.t.ppf(0.5 + level / 2, n - 1))
        out |= {"sem": sem, "ci_low": out["mean"] - q * sem, "ci_high": out["mean"] + q * sem}
    return out


def clustered_paired_ci(a, b, level: float = 0.95, fill: float = DIVERGED_SCORE) -> dict:
    """MDP-clustered paired difference of ``a`` (N, R) against ``b`` (N,) or (N, R_b): row ``i`` holds
    the loops run on held-out MDP ``i``. Non-finite entries are scored ``fill``; each row is
    averaged into one cluster score, then :func:`paired_ci` over the ``N`` clusters. Returns its
    keys (``n`` = ``N`` clusters, ``n_diverged_*`` counting loops) and ``n_loops_a``,
    ``n_loops_b``, ``mean_a``, ``mean_b`` (means over all loops, diverged ones scored ``fill``)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    b = b[:, None] if b.ndim == 1 else b
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"a, b: expected (N, R) and (N,) or (N, R_b), got {a.shape} and {b.shape}")
    (sa, na), (sb, nb) = scored(a, fill), scored(b, fill)
    out = paired_ci(sa.mean(axis=1), sb.mean(axis=1), level, fill)
    out |= {"n_diverged_a": na, "n_diverged_b": nb, "n_loops_a": int(a.size), "n_loops_b": int(b.size)}
    out |= {"mean_a": float(sa.mean()) if a.size else None, "mean_b": float(sb.mean()) if b.size else None}
    return out
