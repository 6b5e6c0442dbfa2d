r"""The (M6) rate fits: ``mu`` from the slope of ``log L(theta(t))`` over a late window of accepted
steps (:func:`fit_rate`), and from a sum of a few exponentials (:func:`fit_modes`,
:func:`fit_two_mode`), each using only points whose loss is resolved in float64.

Near the manifold the exact flow gives :math:`L(t) = \sum_i a_i e^{-2\lambda_i t}` (``a_i >= 0``,
``lambda_i`` the non-zero Hessian eigenvalues at the limit), so ``log L`` is a line only once every
mode but the slowest has decayed. The computed loss carries a round-off error bounded by
``loss_err`` (:func:`lsa_theory.dynamics.loss_and_grad_error_bound`), of relative size ``2 de / |e|``, which
reaches several per cent at ``L ~ 1e-29``: a point enters a fit only when ``loss_err <=
LOSS_FIT_RTOL * loss``, and each fit reports the bound that these errors put on its rate
(``roundoff``, relative), from the linearised least-squares solution: with ``|log L_i - log
L_i^{exact}| <= -log(1 - loss_err_i / L_i) = dy_i``, ``|d mu| <= sum_i |P_{mu, i}| dy_i`` where
``P`` is the pseudo-inverse of the fit's Jacobian (for the straight line, ``P_{mu, i} = -(t_i -
tbar) / (2 sum_j (t_j - tbar)^2)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lsa_theory.checks import as_float_array, check_int, check_real

#: Default loss window of the single-exponential fit :func:`fit_rate` (kept as reported; it mixes
#: the slowest modes when ``lambda_2 / lambda_1`` is near 1, see docs/dynamics.md).
RATE_WINDOW = (1e-30, 1e-22)

#: A point enters a rate fit only if the round-off bound of its loss is at most this fraction of it
#: (its ``log L`` is then known to 1e-3; the fits report what the remaining errors do to the rate).
LOSS_FIT_RTOL = 1e-3


def resolved(loss: np.ndarray, loss_err: np.ndarray | None, rtol: float = LOSS_FIT_RTOL) -> np.ndarray:
    """Mask (n,) of the points with ``loss > 0`` and ``loss_err <= rtol * loss`` (every point with
    ``loss > 0`` when ``loss_err`` is ``None``)."""
    loss = np.asarray(loss, dtype=np.float64)
    ok = loss > 0
    if loss_err is not None:
        loss_err = np.asarray(loss_err, dtype=np.float64)
        if loss_err.shape != loss.shape:
            raise ValueError(f"loss_err: expected shape {loss.shape}, got {loss_err.shape}")
        ok &= loss_err <= rtol * loss
    return ok


def _log_errors(loss: np.ndarray, loss_err: np.ndarray | None) -> np.ndarray | None:
    """Bounds ``-log(1 - loss_err / loss)`` on the error of ``log loss`` (``None`` without bounds)."""
    if loss_err is None:
        return None
    return -np.log1p(-np.minimum(loss_err / loss, 0.5))


def fit_rate(
    t: np.ndarray,
    loss: np.ndarray,
    window: tuple[float, float] = RATE_WINDOW,
    min_points: int = 5,
    loss_err: np.ndarray | None = None,
) -> tuple[float, int]:
    """(M6) measured ``mu``: ``-slope/2`` of the least-squares line of ``log L`` against ``t`` over
    the points with ``window[0] < L < window[1]`` (and, given ``loss_err``, resolved:
    :func:`resolved`); returns ``(mu, n_points)``, ``mu = nan`` when fewer than ``min_points``
    points qualify. :func:`fit_rate_roundoff` bounds what the loss errors do to ``mu``."""
    mu, n, _ = _line(t, loss, window, min_points, loss_err)
    return mu, n


def fit_rate_roundoff(
    t: np.ndarray,
    loss: np.ndarray,
    loss_err: np.ndarray,
    window: tuple[float, float] = RATE_WINDOW,
    min_points: int = 5,
) -> float:
    """Bound on ``|mu - mu_exact| / mu`` of :func:`fit_rate` (with ``loss_err``), ``mu_exact`` the
    same fit to the exact losses of the recorded points: ``sum_i |t_i - tbar| dy_i / (2 mu
    sum_j (t_j - tbar)^2)`` (module docstring); ``nan`` when the fit is."""
    if loss_err is None:
        raise ValueError("loss_err: required (the round-off bounds of the loss), got None")
    return _line(t, loss, window, min_points, loss_err)[2]


def _check_series(t, loss, window, min_points, loss_err=None) -> tuple:
    """The inputs of :func:`fit_rate` checked (issue 24, item 23): ``t``, ``loss`` (n,) finite real
    of equal length (a NaN loss is refused, not dropped), ``window`` ``(low, high)`` with
    ``0 <= low < high``, ``min_points`` an int >= 2, ``loss_err`` (n,) finite and >= 0 or None.
    ValueError naming the argument; returns ``(t, loss, window, min_points, loss_err)``."""
    t = as_float_array(t, "t", ndim=1)
    loss = as_float_array(loss, "loss", ndim=1)
    if loss.shape != t.shape:
        raise ValueError(f"loss: expected the length {t.size} of t, got {loss.size}")
    if not isinstance(window, tuple | list) or len(window) != 2:
        raise ValueError(f"window: expected (low, high), got {window!r}")
    low = check_real(window[0], "window", low=0.0)
    high = check_real(window[1], "window", low=0.0)
    if high <= low:
        raise ValueError(f"window: expected low < high, got {window!r}")
    min_points = check_int(min_points, "min_points", minimum=2)
    if loss_err is not None:
        loss_err = as_float_array(loss_err, "loss_err", ndim=1)
        if loss_err.shape != loss.shape or (loss_err < 0).any():
            raise ValueError(f"loss_err: expected {loss.size} entries >= 0, got shape {loss_err.shape}")
    return t, loss, (low, high), min_points, loss_err


def _line(t, loss, window, min_points, loss_err):
    t, loss, window, min_points, loss_err = _check_series(t, loss, window, min_points, loss_err)
    sel = resolved(loss, loss_err) & (loss > window[0]) & (loss < window[1])
    n = int(sel.sum())
    if n < min_points:
        return float("nan"), n, float("nan")
    tt = t[sel]
    slope = np.polyfit(tt, np.log(loss[sel]), 1)[0]
    mu = float(-slope / 2)
    dy = _log_errors(loss[sel], None if loss_err is None else np.asarray(loss_err)[sel])
    if dy is None:
        return mu, n, float("nan")
    dt = tt - tt.mean()
    return mu, n, float(np.sum(np.abs(dt) * dy) / (2 * np.sum(dt * dt)) / abs(mu))


#: Window of :func:`fit_modes`: up to ``1e-14`` (below it, modes beyond the third slowest have
#: decayed by at least ``(1e-14 / L(0))^(lambda_4 / lambda_1 - 1)`` relative to the slowest, for
#: ``lambda_4 / lambda_1`` of 1.5-2.6 in the converge runs), down to the last resolved point.
MODES_WINDOW = (0.0, 1e-14)
#: Number of exponentials of the (M6) criterion's fit: the slowest three modes (docs/dynamics.md:
#: with ``lambda_2 / lambda_1 = 1.105`` one or two exponentials are biased by 0.5-6 %).
MODES = 3


#: Starts ``(low, q)`` of :func:`fit_modes`, rates ``low m0 q^j``: on the converge runs every
#: start of (1 or 0.9) x (q = 1.05, 1.2, 1.5, 2.5) that converged reached the same minimum; these
#: three did on every run.
FIT_STARTS = ((1.0, 1.2), (0.9, 1.2), (1.0, 2.5))


@dataclass(frozen=True)
class RateFit:
    """A fit of ``log L`` by a sum of ``len(rates)`` exponentials: ``mu`` the slowest rate,
    ``rates`` all of them ascending (``nan`` when the fit failed), ``n_points`` the points used,
    ``roundoff`` the bound on ``|mu - mu_exact| / mu`` due to the loss's round-off (``nan``
    without ``loss_err``), ``cost`` the least-squares cost ``1/2 sum r_i^2`` of ``log L``."""

    mu: float
    rates: tuple[float, ...]
    n_points: int
    roundoff: float
    cost: float


#: :func:`fit_modes` accepts a ``K``-exponential fit only if round-off can move its slowest rate by
#: at most this fraction (half the (M6) bar of 1 %): a fit with more modes than the data resolve
#: (e.g. a spurious slower mode of negligible amplitude on the last points) has a far larger bound.
ROUNDOFF_MAX = 5e-3


def fit_modes(
    t: np.ndarray,
    loss: np.ndarray,
    loss_err: np.ndarray | None = None,
    *,
    n_modes: int = MODES,
    window: tuple[float, float] = MODES_WINDOW,
    min_points: int = 20,
    roundoff_max: float | None = ROUNDOFF_MAX,
) -> RateFit:
    r"""(M6) with several slow modes: least squares of
    :math:`\log L(t) = \log \sum_{j=1}^{K} e^{b_j - 2\mu_j (t - t_0)}` (rates and amplitudes free,
    rates >= 0) over the resolved points (:func:`resolved`) with ``window[0] < L < window[1]``,
    ``t_0`` the first of them; ``K = n_modes``, or, given ``loss_err`` and ``roundoff_max``, the
    largest ``K <= n_modes`` whose ``roundoff`` is at most ``roundoff_max`` (the fit with ``K = 1``
    if none is; ``nan`` rates, ``K = 1``, when no fit succeeds).

    scipy ``least_squares`` (trust region reflective, analytic Jacobian, ``ftol = xtol = gtol =
    1e-12``, Jacobian scaling, at most 2000 evaluations) from the starts :data:`FIT_STARTS` (rates
    ``low m0 q^j``, ``m0`` the straight-line rate); the start of least cost wins. ``roundoff`` as in
    the module docstring, with ``P`` the pseudo-inverse of the Jacobian at the solution."""
    if int(n_modes) != n_modes or n_modes < 1:
        raise ValueError(f"n_modes: expected a positive integer, got {n_modes}")
    t, loss = np.asarray(t, dtype=np.float64), np.asarray(loss, dtype=np.float64)
    sel = resolved(loss, loss_err) & (loss > window[0]) & (loss < window[1])
    s, y = t[sel] - (t[sel][0] if sel.any() else 0.0), np.log(loss[sel])
    dy = _log_errors(loss[sel], None if loss_err is None else np.asarray(loss_err)[sel])
    fit = None
    for K in range(int(n_modes), 0, -1):
        fit = _fit_k(s, y, dy, K, min_points)
        if dy is None or roundoff_max is None or fit.roundoff <= roundoff_max:
            break
    return fit


def _fit_k(s: np.ndarray, y: np.ndarray, dy: np.ndarray | None, K: int, min_points: int) -> RateFit:
    """:func:`fit_modes` with ``K`` exponentials on the selected points ``(s, y = log L)``."""
    from scipy.optimize import least_squares

    n = s.size
    nan = RateFit(float("nan"), (float("nan"),) * K, n, float("nan"), float("nan"))
    if n < max(min_points, 2 * K + 1):
        return nan
    m0 = -np.polyfit(s, y, 1)[0] / 2
    if not (np.isfinite(m0) and m0 > 0):
        return nan

    def residual(p):
        return np.logaddexp.reduce(p[0::2, None] - 2 * p[1::2, None] * s[None, :], axis=0) - y

    def jacobian(p):  # d r / d b_j = w_j, d r / d mu_j = -2 s w_j, w the softmax weights of the modes
        z = p[0::2, None] - 2 * p[1::2, None] * s[None, :]
        w = np.exp(z - z.max(axis=0))
        w /= w.sum(axis=0)
        J = np.empty((s.size, 2 * K))
        J[:, 0::2], J[:, 1::2] = w.T, (-2 * s * w).T
        return J

    lower = np.tile([-np.inf, 0.0], K)  # decaying modes only: no growing mode fits the floor's noise
    best = None
    for low, q in FIT_STARTS[: 1 if K == 1 else None]:
        p0 = np.ravel([[y[0] - j, low * m0 * q**j] for j in range(K)])
        sol = least_squares(
            residual,
            p0,
            jac=jacobian,
            bounds=(lower, np.inf),
            x_scale="jac",
            ftol=1e-12,
            xtol=1e-12,
            gtol=1e-12,
            max_nfev=2000,
        )
        if np.all(np.isfinite(sol.x)) and (best is None or sol.cost < best.cost):
            best = sol
    if best is None:
        return nan
    order = np.argsort(best.x[1::2])
    rates = tuple(float(best.x[1::2][i]) for i in order)
    mu = rates[0]
    roundoff = float("nan")
    if dy is not None and mu > 0:
        P = np.linalg.pinv(best.jac)
        roundoff = float(np.abs(P[2 * order[0] + 1]) @ dy / mu)
    return RateFit(mu, rates, n, roundoff, float(best.cost))


#: Window of :func:`fit_two_mode`: late enough that modes beyond the two slowest have decayed,
#: wide enough that two close rates separate (THEORY (M6); docs/dynamics.md, two-mode fits).
TWO_MODE_WINDOW = (1e-30, 1e-16)


def fit_two_mode(
    t: np.ndarray,
    loss: np.ndarray,
    window: tuple[float, float] = TWO_MODE_WINDOW,
    min_points: int = 20,
    loss_err: np.ndarray | None = None,
) -> tuple[float, float, int]:
    r"""(M6) with two slow modes: ``(mu_1, mu_2, n_points)`` of :func:`fit_modes` with two
    exponentials over ``window`` (reported beside the criterion's three-mode fit; ``nan`` rates
    when fewer than ``min_points`` points qualify or the fit fails).

    When the two smallest non-zero Hessian eigenvalues are close (``lambda_2 / lambda_1`` near 1),
    a single exponential over any window float64 can reach mixes them and overestimates
    ``lambda_min^+`` by a few per cent (:func:`fit_rate`)."""
    fit = fit_modes(t, loss, loss_err, n_modes=2, window=window, min_points=min_points, roundoff_max=None)
    return fit.rates[0], fit.rates[1], fit.n_points
