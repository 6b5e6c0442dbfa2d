"""The (M6) rate fits: ``mu`` from the slope of ``log L(theta(t))`` over a late window of accepted
steps (:func:`fit_rate`), and two modes (:func:`fit_two_mode`).
"""

from __future__ import annotations

import numpy as np

#: Default loss window of the rate fit: late enough that faster modes have died out (docs/theory.md
#: (M6) saw 1.06-1.13 of the prediction on earlier windows), above the round-off floor (~1e-33).
RATE_WINDOW = (1e-30, 1e-22)


def fit_rate(
    t: np.ndarray, loss: np.ndarray, window: tuple[float, float] = RATE_WINDOW, min_points: int = 5
) -> tuple[float, int]:
    """(M6) measured ``mu``: ``-slope/2`` of the least-squares line of ``log L`` against ``t`` over
    the points with ``window[0] < L < window[1]``; returns ``(mu, n_points)``, ``mu = nan`` when fewer
    than ``min_points`` points fall in the window."""
    t, loss = np.asarray(t, dtype=np.float64), np.asarray(loss, dtype=np.float64)
    sel = (loss > window[0]) & (loss < window[1])
    if sel.sum() < min_points:
        return float("nan"), int(sel.sum())
    slope = np.polyfit(t[sel], np.log(loss[sel]), 1)[0]
    return float(-slope / 2), int(sel.sum())


#: Window of :func:`fit_two_mode`: late enough that modes beyond the two slowest have decayed,
#: wide enough that two close rates separate (THEORY (M6); docs/dynamics.md, two-mode fits).
TWO_MODE_WINDOW = (1e-30, 1e-16)


def fit_two_mode(
    t: np.ndarray, loss: np.ndarray, window: tuple[float, float] = TWO_MODE_WINDOW, min_points: int = 20
) -> tuple[float, float, int]:
    r"""(M6) with two slow modes: ``(mu_1, mu_2, n_points)`` of the least-squares fit of
    :math:`\log L(t) = \log(a_1 e^{-2\mu_1 t} + a_2 e^{-2\mu_2 t})` (rates and amplitudes free,
    ``mu_1 <= mu_2``) over the points with ``window[0] < L < window[1]``.

    When the two smallest non-zero Hessian eigenvalues are close (``lambda_2 / lambda_1`` near 1),
    a single exponential over any window float64 can reach mixes them and overestimates
    ``lambda_min^+`` by a few per cent (:func:`fit_rate`); this fit separates them. ``nan`` rates
    when fewer than ``min_points`` points fall in the window or the fit does not converge
    (scipy ``least_squares``, its default tolerances 1e-8, Jacobian scaling)."""
    from scipy.optimize import least_squares

    t, loss = np.asarray(t, dtype=np.float64), np.asarray(loss, dtype=np.float64)
    sel = (loss > window[0]) & (loss < window[1])
    n = int(sel.sum())
    if n < min_points:
        return float("nan"), float("nan"), n
    tt, y = t[sel], np.log(loss[sel])
    m0 = -np.polyfit(tt, y, 1)[0] / 2

    def residual(p):
        a1, m1, a2, m2 = p
        return np.logaddexp(a1 - 2 * m1 * tt, a2 - 2 * m2 * tt) - y

    a0 = y[0] + 2 * m0 * tt[0]
    sol = least_squares(residual, [a0, 0.97 * m0, a0 - 1.0, 1.2 * m0], x_scale="jac", max_nfev=5000)
    if not sol.success:
        return float("nan"), float("nan"), n
    m1, m2 = sorted([sol.x[1], sol.x[3]])
    return float(m1), float(m2), n
