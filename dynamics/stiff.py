r"""The structured stiff path of the gradient flow (M1)-(M6): BDF with the Newton matrix
``I + c H`` factorised through the Schur complement on the block-diagonal ``H_AA``.

The Hessian of (M1) on ``theta = [vec(A); vec(B)]`` has ``H_AA = I_k (x) M`` with one ``m x m``
block ``M = mean u u^T`` repeated ``k`` times (:func:`lsa_theory.dynamics.hessian_blocks`). With
``M = Q diag(mu) Q^T`` and ``Hh = (I_k (x) Q^T) H_AB`` (the A rows in M's eigenbasis), the
Newton systems of an implicit integrator,

.. math:: \begin{pmatrix} I + c\, I_k\otimes M & c H_{AB} \\ c H_{BA} & I + c H_{BB}\end{pmatrix}
          \begin{pmatrix} x_A \\ x_B \end{pmatrix} = \begin{pmatrix} b_A \\ b_B \end{pmatrix},

reduce to one ``(m p) x (m p)`` system with the Schur complement

.. math:: S(c) = I + c H_{BB} - c^2 \hat H^\top D_c \hat H, \qquad D_c = I_k \otimes
          \mathrm{diag}(1 / (1 + c \mu)),

formed by one symmetric rank-``k m`` update (BLAS ``syrk``) and factorised by Cholesky (LU if
``I + c H`` is indefinite, possible off the manifold where ``H`` has negative eigenvalues), instead
of an LU of the ``(k m + m p)``-sized matrix: at d = 36 (5329 parameters) 2701 instead of 5329.

The integrator is :class:`scipy.integrate.BDF` (variable order 1-5, quasi-constant steps, Jacobian
and factorisation reuse) with the Jacobian ``-H`` represented by :class:`NegHessian`, whose
``I - c J`` is the factorisation above (numpy's operators defer to it: ``__array_ufunc__ = None``).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
from scipy.integrate import BDF
from scipy.linalg.blas import dsyrk

from .objective import HessianBlocks

__all__ = ["NegHessian", "SchurFactor", "StructuredBDF", "ScaleProjection"]


class NegHessian:
    """The flow's Jacobian ``J = -H(theta)`` kept as its blocks (:class:`HessianBlocks`), with the
    eigen-decomposition ``M = Q diag(mu) Q^T`` and the rotated coupling ``Hh = (I_k (x) Q^T) H_AB``
    computed once. ``c * J`` and ``I - c * J`` build a :class:`SchurFactor` of ``I + c H``."""

    __array_ufunc__ = None  # numpy's binary operators return NotImplemented: ours are used

    def __init__(self, blocks: HessianBlocks):
        sh = blocks.shapes
        self.shapes = sh
        self.mu, self.Q = np.linalg.eigh(blocks.M)
        HAB = blocks.HAB.reshape(sh.k, sh.m, sh.m * sh.p)
        self.Hh = np.matmul(self.Q.T[None], HAB).reshape(sh.k * sh.m, sh.m * sh.p)
        self.HBB = blocks.HBB
        self.shape = (sh.size, sh.size)

    def __rmul__(self, c):
        return _ScaledNegHessian(self, float(c))


class _ScaledNegHessian:
    """``c J = -c H`` (only ``I - c J`` is ever formed from it)."""

    __array_ufunc__ = None

    def __init__(self, J: NegHessian, c: float):
        self.J, self.c = J, c

    def __rsub__(self, identity):
        return SchurFactor(self.J, self.c)


class SchurFactor:
    """Factorisation of ``I + c H`` (module docstring); :meth:`solve` applies its inverse.

    ``kind`` is ``"cholesky"`` or ``"lu"`` (the latter when ``S(c)`` is not positive definite)."""

    def __init__(self, J: NegHessian, c: float):
        sh = J.shapes
        self.J, self.c = J, c
        self.dk = np.tile(1.0 / (1.0 + c * J.mu), sh.k)  # D_c, (k m,)
        X = J.Hh * np.sqrt(np.abs(self.dk))[:, None]
        S = c * J.HBB  # a fresh C-ordered array; its transpose is the Fortran view syrk writes into
        S.flat[:: S.shape[0] + 1] += 1.0
        sign = np.sign(self.dk)[:, None]
        if np.all(sign > 0):
            # lower triangle of the Fortran view: S_F <- S_F - c^2 X^T X
            S = dsyrk(-(c**2), X.T, beta=1.0, c=S.T, trans=0, lower=1, overwrite_c=1).T
            try:
                self.kind, self.fac = "cholesky", sla.cho_factor(S, lower=False, check_finite=False)
                return
            except np.linalg.LinAlgError:
                S = np.triu(S) + np.triu(S, 1).T
        else:  # 1 + c mu <= 0 for some mu: not reached by BDF (c > 0, M is positive semi-definite)
            S = S - c**2 * (J.Hh.T * self.dk) @ J.Hh
        self.kind, self.fac = "lu", sla.lu_factor(S, check_finite=False)

    def solve(self, b: np.ndarray) -> np.ndarray:
        """``(I + c H)^{-1} b`` for ``b`` (size,) by block elimination."""
        J, sh, c = self.J, self.J.shapes, self.c
        km = sh.k * sh.m
        bAh = (b[:km].reshape(sh.k, sh.m) @ J.Q).ravel()
        rhs = b[km:] - c * (J.Hh.T @ (self.dk * bAh))
        if self.kind == "cholesky":
            xB = sla.cho_solve(self.fac, rhs, check_finite=False)
        else:
            xB = sla.lu_solve(self.fac, rhs, check_finite=False)
        xAh = self.dk * (bAh - c * (J.Hh @ xB))
        return np.concatenate([(xAh.reshape(sh.k, sh.m) @ J.Q.T).ravel(), xB])


class StructuredBDF(BDF):
    """:class:`scipy.integrate.BDF` whose Jacobian is ``jac(t, y) -> NegHessian`` and whose Newton
    matrices ``I + c H`` are :class:`SchurFactor` s (``nlu`` counts them).

    ``reuse``: after a change of step size or order BDF refactorises ``I + c H`` for the new ``c``;
    here the last factorisation is kept while ``c / c_fac`` stays within ``[1 / reuse, reuse]``
    (modified Newton then contracts by about ``|c / c_fac - 1|`` per iteration). If Newton fails with
    such a kept factorisation it is refactorised at the right ``c`` first, before BDF's usual remedy
    of a new Jacobian. ``reuse = 1`` is scipy's behaviour."""

    def __init__(self, fun, t0, y0, t_bound, *, jac, reuse: float = 1.0, **kwargs):
        self._kept = False
        super().__init__(fun, t0, y0, t_bound, jac=jac, **kwargs)
        self.I = None  # never formed: the dense identity would be size^2 doubles
        self.reuse = float(reuse)
        self._last = None

        def lu(A):
            self.nlu += 1
            self._last, self._kept = A, False
            return A

        self.lu = lu
        self.solve_lu = lambda LU, b: LU.solve(b)

    def _validate_jac(self, jac, sparsity):
        if not callable(jac):
            raise ValueError("jac: StructuredBDF needs a callable returning a NegHessian")

        def jac_wrapped(t, y):
            if self._kept:  # Newton failed on a kept factorisation: refactorise, same Jacobian
                self._kept = False
                return self.J
            self.njev += 1
            return jac(t, y)

        return jac_wrapped, jac_wrapped(self.t, self.y)

    def _step_impl(self):
        if self.LU is None and self._last is not None and self.reuse > 1.0:
            ratio = self.h_abs / self.alpha[self.order] / self._last.c
            if 1.0 / self.reuse <= ratio <= self.reuse:
                self.LU, self._kept = self._last, True
        return super()._step_impl()


class ScaleProjection:
    """Projection onto the (M3) level set along the loss's symmetry: ``(A_v, B_v) -> (A_v / s,
    s B_v)`` on the visible parts ``A_v = A (I - U U^T)``, ``B_v = (I - U U^T) B`` (``U``: (m, r)
    invisible directions of (M4)), with ``s > 0`` the root of ``||A_v||^2 / s^2 - s^2 ||B_v||^2 = Q_v``.

    ``A Sigma_f B`` and hence the loss are unchanged (``Sigma_f U = 0``); the exact flow conserves
    ``Q_v`` and the invisible parts, so this is the projection method for a first integral
    (Hairer, Lubich & Wanner, *Geometric Numerical Integration*, IV.4) without a change of loss.
    ``delta(theta)`` returns the (size,) correction to add."""

    def __init__(self, shapes, U: np.ndarray, theta0: np.ndarray):
        self.shapes = shapes
        self.Pv = np.eye(shapes.m) - U @ U.T
        Av, Bv = self._visible(theta0)
        self.Q = float(np.sum(Av * Av) - np.sum(Bv * Bv))

    def _visible(self, theta):
        sh = self.shapes
        km = sh.k * sh.m
        return theta[:km].reshape(sh.k, sh.m) @ self.Pv, self.Pv @ theta[km:].reshape(sh.m, sh.p)

    def delta(self, theta: np.ndarray) -> np.ndarray:
        Av, Bv = self._visible(theta)
        a, b, Q = float(np.sum(Av * Av)), float(np.sum(Bv * Bv)), self.Q
        if a == 0.0 or b == 0.0:
            return np.zeros_like(theta)
        s = np.sqrt(2.0 * a / (Q + np.sqrt(Q * Q + 4.0 * a * b)))  # = root of b s^4 + Q s^2 - a, stably
        return np.concatenate([(Av * (1.0 / s - 1.0)).ravel(), (Bv * (s - 1.0)).ravel()])
