r"""Symbolic twins of the constructions and proofs by computation (sympy).

The twins build ``(c P*, V*/c)`` of (S3)/(A3) and ``(P, Q)`` of (W3) with symbolic ``alpha``,
``beta`` and ``c``. The ``prove_*`` functions build prompts whose every entry is a distinct
symbol (features, discounted next features through a symbolic ``gamma``, rewards, ``w``,
``lambda``), run the block(s) in exact arithmetic and return the residual
``expand(lhs - rhs)`` entry by entry: a claim holds as a polynomial identity iff every residual
is the zero polynomial. The right-hand sides come from :mod:`lsa_theory.reference`, the naive
loops, fed the same symbols.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sympy as sp

from lsa_theory import naive_batch_actor_critic, naive_batch_sarsa, naive_batch_td
from lsa_theory._checks import check_int
from lsa_theory.prompts import Layout

__all__ = [
    "SymbolicProof",
    "sarsa_symbolic",
    "actor_critic_symbolic",
    "td_symbolic",
    "lsa_block_symbolic",
    "masked_lsa_symbolic",
    "prove_sarsa",
    "prove_actor_critic",
    "prove_td",
    "prove_lemma_c1",
]

alpha_s, beta_s, gamma_s, c_s = sp.symbols("alpha beta gamma c", real=True)


@dataclass(frozen=True)
class SymbolicProof:
    """Outcome of a proof by computation: ``claim`` label, sizes, the number of residual entries
    that are not the zero polynomial (``nonzero``; 0 means the identity holds), and the time."""

    claim: str
    sizes: dict
    n_entries: int
    nonzero: int
    seconds: float

    @property
    def holds(self) -> bool:
        return self.nonzero == 0


def _twin(layout: Layout, alpha, beta, c) -> tuple[sp.Matrix, sp.Matrix]:
    D = layout.D
    P = sp.zeros(D, D)
    V = sp.zeros(D, D)
    for j in range(layout.d):
        P[layout.phi.start + j, layout.w.start + j] = -c
        P[layout.phi_next.start + j, layout.w.start + j] = c
        V[layout.w.start + j, layout.phi.start + j] = alpha / c
    P[layout.r, layout.const] = c
    for k in range(layout.d_pi):
        V[layout.lam.start + k, layout.g.start + k] = beta / c
    return P, V


def sarsa_symbolic(d: int, alpha=alpha_s, c=c_s) -> tuple[sp.Matrix, sp.Matrix]:
    """(S3)/(S4) as sympy matrices (3d+2, 3d+2) with symbolic ``alpha`` and ``c`` by default."""
    return _twin(Layout(check_int(d, "d")), alpha, 0, c)


def actor_critic_symbolic(
    d: int, d_pi: int, alpha=alpha_s, beta=beta_s, c=c_s
) -> tuple[sp.Matrix, sp.Matrix]:
    """(A3)/(A4) as sympy matrices with symbolic ``alpha``, ``beta``, ``c`` by default."""
    return _twin(Layout(check_int(d, "d"), check_int(d_pi, "d_pi")), alpha, beta, c)


def td_symbolic(d: int, alpha=alpha_s) -> tuple[sp.Matrix, sp.Matrix]:
    """(W3) as sympy matrices (2d+1, 2d+1)."""
    d = check_int(d, "d")
    D = 2 * d + 1
    P = sp.zeros(D, D)
    P[D - 1, D - 1] = 1
    Q = sp.zeros(D, D)
    for j in range(d):
        Q[j, j] = -alpha
        Q[j, d + j] = alpha
    return P, Q


def lsa_block_symbolic(H: sp.Matrix, P: sp.Matrix, V: sp.Matrix) -> sp.Matrix:
    """(L1) in exact arithmetic: ``H + (1/n) V H H^T P H`` with ``n = cols(H) - 1``."""
    n = H.shape[1] - 1
    return H + (V * H * H.T * P * H) / n


def masked_lsa_symbolic(
    Z: sp.Matrix, P: sp.Matrix, Q: sp.Matrix, n_queries: int = 1, mask: sp.Matrix | None = None
) -> sp.Matrix:
    """(W2) in exact arithmetic: ``Z + (1/n) P Z M Z^T Q Z``, ``M = diag(I_n, 0)`` or a given
    ``mask`` (n+n_q, n+n_q) whose query rows and columns are zero, e.g. the (W5) trace mask."""
    n = Z.shape[1] - n_queries
    if mask is None:
        M = sp.diag(*([1] * n + [0] * n_queries))
    else:
        M = sp.Matrix(mask)
        if M.shape != (Z.shape[1], Z.shape[1]):
            raise ValueError(f"mask: expected shape ({Z.shape[1]}, {Z.shape[1]}), got {M.shape}")
        if any(e != 0 for e in list(M[n:, :]) + list(M[:, n:])):
            raise ValueError("mask: its query rows and columns must be zero")
    return Z + (P * Z * M * Z.T * Q * Z) / n


def _symbols(prefix: str, n: int, d: int) -> list[list[sp.Symbol]]:
    return [[sp.Symbol(f"{prefix}_{i}_{j}", real=True) for j in range(d)] for i in range(n)]


def _vec(prefix: str, d: int) -> list[sp.Symbol]:
    return [sp.Symbol(f"{prefix}_{j}", real=True) for j in range(d)]


def _columns(phi, phi_next, r, gamma) -> sp.Matrix:
    """x_i = [phi_i; gamma phi_i^+; r_{i+1}] as columns, written out independently of numpy."""
    cols = [list(phi[i]) + [gamma * v for v in phi_next[i]] + [r[i]] for i in range(len(r))]
    return sp.Matrix(cols).T


def _count(claim: str, sizes: dict, residual: list, t0: float) -> SymbolicProof:
    nonzero = sum(1 for e in residual if sp.expand(e) != 0)
    return SymbolicProof(claim, sizes, len(residual), nonzero, time.perf_counter() - t0)


def prove_sarsa(d: int = 2, n: int = 3, n_layers: int = 1) -> SymbolicProof:
    """(S4) for ``n_layers = 1``, (S5) for more: L copies of ``(c P*, V*/c)`` map a fully symbolic
    (H) prompt to L batch-SARSA iterations in the readout, and leave every context column and
    the constant row unchanged. Residual entries: the whole output matrix minus its target."""
    t0 = time.perf_counter()
    d, n, L = check_int(d, "d"), check_int(n, "n"), check_int(n_layers, "n_layers")
    phi, phi_next, r, w = _symbols("phi", n, d), _symbols("psi", n, d), _vec("r", n), _vec("w", d)
    X = _columns(phi, phi_next, r, gamma_s)
    H = sp.zeros(3 * d + 2, n + 1)
    H[: 2 * d + 1, :n] = X
    H[2 * d + 1, n] = 1
    H[2 * d + 2 :, n] = sp.Matrix(w)
    P, V = sarsa_symbolic(d)
    out = H
    for _ in range(L):
        out = lsa_block_symbolic(out, P, V).applyfunc(sp.cancel)
    target = H.copy()
    target[2 * d + 2 :, n] = sp.Matrix(
        list(naive_batch_sarsa(phi, phi_next, r, w, gamma_s, alpha_s, n_iter=L))
    )
    claim = "(S4)" if L == 1 else "(S5)"
    return _count(claim, {"d": d, "n": n, "L": L}, list(out - target), t0)


def prove_actor_critic(d: int = 2, d_pi: int = 2, n: int = 3) -> SymbolicProof:
    """(A4): one layer of ``(c P*, V*/c)`` of (A3) maps a fully symbolic (A1) prompt to
    ``[w'; lambda']`` of (A2), context columns and constant row unchanged."""
    t0 = time.perf_counter()
    d, d_pi, n = check_int(d, "d"), check_int(d_pi, "d_pi"), check_int(n, "n")
    lay = Layout(d, d_pi)
    phi, phi_next, r = _symbols("phi", n, d), _symbols("psi", n, d), _vec("r", n)
    g, w, lam = _symbols("g", n, d_pi), _vec("w", d), _vec("lam", d_pi)
    H = sp.zeros(lay.D, n + 1)
    H[: 2 * d + 1, :n] = _columns(phi, phi_next, r, gamma_s)
    H[2 * d + 1 : lay.m, :n] = sp.Matrix(g).T
    H[lay.const, n] = 1
    H[lay.m + 1 :, n] = sp.Matrix(w + lam)
    P, V = actor_critic_symbolic(d, d_pi)
    out = lsa_block_symbolic(H, P, V).applyfunc(sp.cancel)
    w_new, lam_new = naive_batch_actor_critic(phi, phi_next, r, g, w, lam, gamma_s, alpha_s, beta_s)
    target = H.copy()
    target[lay.m + 1 :, n] = sp.Matrix(list(w_new) + list(lam_new))
    return _count("(A4)", {"d": d, "d_pi": d_pi, "n": n}, list(out - target), t0)


def prove_td(d: int = 2, n: int = 3, n_layers: int = 2) -> SymbolicProof:
    """(W3): L layers of the masked block (W2) with (W3) give ``-Z_L[-1, -1] = w_L^T phi(s)``,
    ``w_L`` = L steps of batch TD(0) from 0 on a fully symbolic prompt (W1)."""
    t0 = time.perf_counter()
    d, n, L = check_int(d, "d"), check_int(n, "n"), check_int(n_layers, "n_layers")
    phi, phi_next, r, q = _symbols("phi", n, d), _symbols("psi", n, d), _vec("r", n), _vec("q", d)
    Z = sp.zeros(2 * d + 1, n + 1)
    Z[:, :n] = _columns(phi, phi_next, r, gamma_s)
    Z[:d, n] = sp.Matrix(q)
    P, Q = td_symbolic(d)
    for _ in range(L):
        Z = masked_lsa_symbolic(Z, P, Q).applyfunc(sp.expand)
    w_L = naive_batch_td(phi, phi_next, r, gamma_s, alpha_s, n_iter=L)
    value = sum(w_L[j] * q[j] for j in range(d))
    return _count("(W3)", {"d": d, "n": n, "L": L}, [-Z[2 * d, n] - value], t0)


def prove_lemma_c1(d: int = 1, n: int = 2) -> SymbolicProof:
    """(L2): for fully symbolic ``P``, ``V`` and prompt, the readout of (L1) equals
    ``w + Vbar21 Sigma P12 wt + (1/n) Vbar22 wt wt^T P22 wt``."""
    t0 = time.perf_counter()
    d, n = check_int(d, "d"), check_int(n, "n")
    lay = Layout(d)
    D, m = lay.D, lay.m
    P = sp.Matrix(D, D, lambda i, j: sp.Symbol(f"P_{i}_{j}", real=True))
    V = sp.Matrix(D, D, lambda i, j: sp.Symbol(f"V_{i}_{j}", real=True))
    X = sp.Matrix(m, n, lambda i, j: sp.Symbol(f"x_{i}_{j}", real=True))
    wt = sp.Matrix([1] + _vec("w", d))
    H = sp.zeros(D, n + 1)
    H[:m, :n] = X
    H[m:, n] = wt
    readout = lsa_block_symbolic(H, P, V)[m + 1 :, n]
    Sigma = X * X.T / n
    P12, P22 = P[:m, m:], P[m:, m:]
    Vb21, Vb22 = V[m + 1 :, :m], V[m + 1 :, m:]
    formula = wt[1:, 0] + Vb21 * Sigma * P12 * wt + Vb22 * wt * (wt.T * P22 * wt) / n
    return _count("(L2)", {"d": d, "n": n}, list(readout - formula), t0)
