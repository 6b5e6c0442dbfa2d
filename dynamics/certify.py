r"""A certified Hessian kernel dimension for (M5), by exact arithmetic on the stored sample.

Every float64 is a rational number, so the stored sample (context columns ``X_f``, parameters
``wt_f``) and the construction ``theta* = (A*, B*)`` of (S3)/(A3) are exact rational data. Define
the targets exactly, ``y_f = A* Sigma_f B* wt_f`` with ``Sigma_f = (1/n) X_f X_f^T`` — by (S4)/(A4)
the teacher's update with ``alpha`` (and ``beta``) as stored — so that ``theta*`` is an exact zero
of (M1). There the residuals vanish and the Hessian is exactly Gauss–Newton,
``H = J^T J / F`` with ``J`` the ``(F k_out) x size`` Jacobian of the residuals
``e_f = A Sigma_f B wt_f - y_f``: its rows are ``[e_i (x) u_f ; (A Sigma_f)_{i,:} (x) wt_f]``,
``u_f = Sigma_f B wt_f``. Hence ``ker H = ker J`` over the rationals, and:

* **upper bound** ``ker <= size - rank_p(J)``: the rank of ``J`` reduced modulo a prime ``p`` (one
  that divides no denominator) is a lower bound on its rank over Q (a non-zero minor mod p is a
  non-zero integer minor);
* **lower bound** ``ker >= dim T``: the (M4) tangent ``T`` is built from *exact* null spaces over Q
  (of the distinct context columns, and of the frames' ``wt_f``; :class:`fractions.Fraction`
  elimination), so every one of its vectors is an exact kernel vector (``Sigma_f u = 0``,
  ``v^T wt_f = 0``, scaling invariance); ``rank_p(T) <= dim_Q T``. Also ``ker >= size - F k_out``
  (the rank bound: ``J`` has ``F k_out`` rows).

When the two bounds meet, the kernel dimension is certified, and since ``T`` lies in the kernel
the kernel *is* the tangent when ``dim T`` equals it. Otherwise the data do not decide at the
primes tried and :attr:`KernelCertificate.certified` is False with the bounds in ``reason``
(never a threshold's answer). ``J T = 0 mod p`` is checked as well (a bug would break it).

The float64 spectrum is reported beside the certificate as its margin: at the certified split,
the largest kernel ``|lambda|`` and the smallest non-zero ``|lambda|`` relative to ``lambda_max``
(a non-zero eigenvalue below round-off, ~1e-16, is one float64 cannot resolve: only the exact
rank decides it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .data import TeacherDataset
from .manifold import KERNEL_RTOL, rank_bound
from .objective import construction, hessian, shapes, unpack

__all__ = ["PRIMES", "KernelCertificate", "certify_kernel", "rank_bound", "rank_mod_p", "exact_null_space"]

#: Primes below 2^26: products of two residues stay below 2^52 and sums of 2^11 of them fit int64.
PRIMES = (67108859, 67108837, 67108819)
_CHUNK = 2048


@dataclass(frozen=True)
class KernelCertificate:
    """Exact kernel dimension of the Hessian of (M1) at ``theta*`` (see the module docstring).

    ``ker_dim`` (None unless ``certified``) lies in ``[lower, upper]``; ``tangent_dim`` is the exact
    dimension of the (M4) tangent (``invisible_dim`` data directions, ``blind_dim`` parameter-column
    blind-spot directions); ``rows = F k_out`` bounds the rank (``rank_limited`` when it is below
    ``size``); ``primes`` the primes used; ``reason`` says what decided or why nothing did.
    Float64 margin at the split: ``float_kernel_max`` and ``float_nonzero_min`` (``|lambda| /
    lambda_max``), ``float_ker_dim`` the thresholded count at :data:`~lsa_theory.dynamics.KERNEL_RTOL`."""

    certified: bool
    ker_dim: int | None
    lower: int
    upper: int
    tangent_dim: int
    invisible_dim: int
    blind_dim: int
    size: int
    rows: int
    rank_limited: bool
    primes: tuple[int, ...]
    reason: str
    float_ker_dim: int
    float_kernel_max: float
    float_nonzero_min: float
    seconds: float

    @property
    def kernel_is_tangent(self) -> bool:
        """(M5) Morse–Bott with the (M4) tangent, certified: the kernel equals the tangent."""
        return bool(self.certified and self.ker_dim == self.tangent_dim)


# ------------------------------------------------------------------------------------------------
# exact rationals
# ------------------------------------------------------------------------------------------------


def _rref_null(M: list[list[Fraction]], c: int) -> list[list[Fraction]]:
    """Null-space basis of the rational rows ``M`` (reduced row echelon form)."""
    M = [list(r) for r in M]
    pivots: list[int] = []
    r = 0
    for col in range(c):
        piv = next((i for i in range(r, len(M)) if M[i][col] != 0), None)
        if piv is None:
            continue
        M[r], M[piv] = M[piv], M[r]
        inv = 1 / M[r][col]
        M[r] = [x * inv for x in M[r]]
        for i in range(len(M)):
            if i != r and M[i][col] != 0:
                f = M[i][col]
                M[i] = [a - f * b for a, b in zip(M[i], M[r], strict=True)]
        pivots.append(col)
        r += 1
        if r == len(M):
            break
    basis = []
    for j in (j for j in range(c) if j not in pivots):
        v = [Fraction(0)] * c
        v[j] = Fraction(1)
        for i, pc in enumerate(pivots):
            v[pc] = -M[i][j]
        basis.append(v)
    return basis


def exact_null_space(rows: np.ndarray, p: int = PRIMES[0]) -> list[list[Fraction]]:
    """Basis of ``{v in Q^c : r^T v = 0 for every row r}`` of the float matrix ``rows`` (R x c),
    every float read as the rational it is. Exact: the rows that are independent mod ``p`` are
    independent over Q; the null space of those (in :class:`Fraction`) is checked exactly against
    every row, with full elimination over Q as the fallback."""
    rows = np.unique(np.asarray(rows, dtype=np.float64), axis=0)
    c = rows.shape[1]
    sub = _pivots_mod_p(_float_mod(rows, p).T, p)  # independent rows mod p
    frac = [[Fraction(float(x)) for x in r] for r in rows]
    basis = _rref_null([frac[i] for i in sub], c)
    if all(sum((a * b for a, b in zip(r, v, strict=True)), Fraction(0)) == 0 for r in frac for v in basis):
        return basis
    return _rref_null(frac, c)


# ------------------------------------------------------------------------------------------------
# arithmetic modulo p
# ------------------------------------------------------------------------------------------------


def _float_mod(a: np.ndarray, p: int) -> np.ndarray:
    """Residues mod p of float64 entries, exactly: ``x = M 2^(e - 53)`` with integer ``M``."""
    a = np.asarray(a, dtype=np.float64)
    mant, exp = np.frexp(a)
    M = np.ldexp(mant, 53).astype(np.int64)  # exact: |mant| < 1, 53 bits
    e = exp.astype(np.int64) - 53
    out = np.mod(M, p)
    pw = np.empty_like(e)
    for val in np.unique(e):
        pw[e == val] = pow(2, int(val), p)
    return out * pw % p


def _frac_mod(v: list[Fraction], p: int) -> np.ndarray:
    """Residues mod p of rationals; ValueError if p divides a denominator."""
    return np.array([x.numerator % p * pow(x.denominator, -1, p) % p for x in v], dtype=np.int64)


def _matmul_mod(a: np.ndarray, b: np.ndarray, p: int) -> np.ndarray:
    """``a @ b mod p`` for residues below 2^26 (inner sums in chunks of 2^11, exact in int64)."""
    n = a.shape[-1]
    out = np.zeros(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1]), np.int64)
    for s in range(0, n, _CHUNK):
        out = (out + np.matmul(a[..., s : s + _CHUNK], b[..., s : s + _CHUNK, :])) % p
    return out


def _pivots_mod_p(M: np.ndarray, p: int) -> list[int]:
    """Pivot columns of the row echelon form over ``F_p`` of a matrix of residues (Gaussian
    elimination, exact in int64 for ``p < 2^31``); their number is the rank."""
    M = np.array(M, dtype=np.int64) % p
    rows, cols = M.shape
    r, pivots = 0, []
    for col in range(cols):
        if r == rows:
            break
        nz = np.nonzero(M[r:, col])[0]
        if nz.size == 0:
            continue
        piv = r + nz[0]
        if piv != r:
            M[[r, piv], col:] = M[[piv, r], col:]
        M[r, col:] = M[r, col:] * pow(int(M[r, col]), -1, p) % p
        act = np.nonzero(M[r + 1 :, col])[0] + r + 1
        if act.size:
            M[act, col:] = (M[act, col:] - M[act, col : col + 1] * M[r, col:]) % p
        pivots.append(col)
        r += 1
    return pivots


def rank_mod_p(M: np.ndarray, p: int) -> int:
    """Rank over ``F_p`` of an integer matrix of residues; a lower bound on the rank over Q of the
    rational matrix it reduces."""
    return len(_pivots_mod_p(M, p))


def _jacobian_mod(dataset: TeacherDataset, A: np.ndarray, B: np.ndarray, Sig: np.ndarray, wt: np.ndarray, p):
    """``J`` mod p, (F k_out, size): rows ``[e_i (x) u_f ; (A Sigma_f)_{i,:} (x) wt_f]``."""
    sh = shapes(dataset)
    F = dataset.n_frames
    Bw = _matmul_mod(wt[:, None, :], B.T[None], p)[:, 0]  # (F, m)
    u = _matmul_mod(Sig, Bw[:, :, None], p)[:, :, 0]  # Sigma_f B wt_f
    G = _matmul_mod(A[None], Sig, p)  # A Sigma_f, (F, k, m)
    km = sh.k * sh.m
    J = np.zeros((F, sh.k, sh.size), dtype=np.int64)
    for i in range(sh.k):
        J[:, i, i * sh.m : (i + 1) * sh.m] = u
    J[:, :, km:] = (G[:, :, :, None] * wt[:, None, None, :] % p).reshape(F, sh.k, sh.m * sh.p)
    return J.reshape(F * sh.k, sh.size)


def _tangent_mod(sh, A: np.ndarray, B: np.ndarray, U: list, W: list, p: int) -> np.ndarray:
    """(size, t) residues of the exact (M4) tangent vectors (scaling, invisible, blind spot)."""
    vecs = [np.concatenate([(-A % p).ravel(), B.ravel()]) % p]
    zA, zB = np.zeros((sh.k, sh.m), np.int64), np.zeros((sh.m, sh.p), np.int64)
    for u in (_frac_mod(u, p) for u in U):
        for i in range(sh.k):
            dA = zA.copy()
            dA[i] = u
            vecs.append(np.concatenate([dA.ravel(), zB.ravel()]))
        for q in range(sh.p):
            dB = zB.copy()
            dB[:, q] = u
            vecs.append(np.concatenate([zA.ravel(), dB.ravel()]))
    for v in (_frac_mod(v, p) for v in W):
        for j in range(sh.m):
            dB = zB.copy()
            dB[j] = v
            vecs.append(np.concatenate([zA.ravel(), dB.ravel()]))
    return np.stack(vecs, axis=1)


def certify_kernel(
    dataset: TeacherDataset, c: float = 1.0, primes: tuple[int, ...] = PRIMES
) -> KernelCertificate:
    """Certified kernel dimension of the Hessian of (M1) at ``theta* = construction(dataset, c)``
    on the exact rational sample (module docstring); needs ``dataset.X`` (``keep_prompts=True``).
    Tries ``primes`` in turn until the bounds meet."""
    if dataset.X is None:
        raise ValueError(
            "dataset: certify_kernel needs the context columns (teacher_dataset(keep_prompts=True))"
        )
    if not primes or any(not isinstance(q, int) or q < 3 or q >= 2**26 for q in primes):
        raise ValueError(f"primes: expected odd primes below 2^26, got {primes}")
    t0 = time.perf_counter()
    sh = shapes(dataset)
    theta = construction(dataset, c)
    A_f, B_f = unpack(theta, sh)
    X = dataset.X  # (F, m, n)
    n = X.shape[-1]
    U = exact_null_space(X.transpose(0, 2, 1).reshape(-1, sh.m))
    W = exact_null_space(dataset.wt)
    r, s = len(U), len(W)
    tangent_formula = 1 + sh.k * r + r * sh.p + sh.m * s - r * s
    rows, size = rank_bound(dataset)
    lower = max(0, size - rows)
    upper = size
    t_rank = 0
    used: list[int] = []
    for p in primes:
        try:
            T = _tangent_mod(sh, _float_mod(A_f, p), _float_mod(B_f, p), U, W, p)
        except ValueError:  # p divides a denominator of the exact null vectors
            continue
        used.append(p)
        Xp = _float_mod(X, p)
        Sig = _matmul_mod(Xp, Xp.transpose(0, 2, 1), p) * pow(n, -1, p) % p
        J = _jacobian_mod(dataset, _float_mod(A_f, p), _float_mod(B_f, p), Sig, _float_mod(dataset.wt, p), p)
        if np.any(_matmul_mod(J, T, p)):
            raise RuntimeError("certify_kernel: an exact tangent vector is not in ker J mod p (a bug)")
        t_rank = max(t_rank, rank_mod_p(T.T, p))
        upper = min(upper, size - rank_mod_p(J, p))
        lower = max(lower, t_rank)
        if lower == upper:
            break
    certified = bool(used) and lower == upper
    if used and t_rank != tangent_formula:  # rank_p(T) <= dim_Q T <= the count of the spanning set
        raise RuntimeError(f"certify_kernel: tangent rank {t_rank} mod p, expected {tangent_formula}")
    if not used:
        reason = f"every prime in {primes} divides a denominator"
    elif certified:
        what = "the (M4) tangent" if lower == t_rank else f"the rank bound size - F k_out = {size - rows}"
        reason = f"rank_p(J) = {size - upper} at p = {used[-1]}; lower bound from {what}"
    else:
        reason = (
            f"not decided: exact kernel in [{lower}, {upper}] (lower: exact tangent / rank bound, "
            f"upper: size - rank mod p at {used})"
        )
    lam = np.sort(np.abs(np.linalg.eigvalsh(hessian(dataset, theta))))
    rel = lam / lam[-1]
    K = lower if certified else None
    return KernelCertificate(
        certified=certified,
        ker_dim=K,
        lower=lower,
        upper=upper,
        tangent_dim=int(t_rank),
        invisible_dim=r,
        blind_dim=s,
        size=size,
        rows=rows,
        rank_limited=rows < size,
        primes=tuple(used),
        reason=reason,
        float_ker_dim=int((rel <= KERNEL_RTOL).sum()),
        float_kernel_max=float(rel[K - 1]) if K else 0.0,
        float_nonzero_min=float(rel[K]) if K is not None and K < size else float("nan"),
        seconds=time.perf_counter() - t0,
    )
