r"""Trained L-layer stacks of the masked block (W2) on (R1) regression prompts, read against (R3).

The prediction is ``yhat = -E_L[-1, -1]`` ([Ahn]'s convention, the sign of (R3)); the loss is
``(1/2) E (yhat - y_q)^2`` on fresh antithetic batches of (R4)'s law (``x ~ N(0, Lambda)``,
``w ~ N(0, I)``), minimised by Adam in float64. Two parameterisations:

- ``"sparse"`` ([Ahn]'s): ``P_l = e_{d+1} e_{d+1}^T`` fixed, ``Q_l = [[-A_l, 0], [0, 0]]``, only the
  ``A_l`` trained;
- ``"full"``: every entry of every ``P_l``, ``Q_l`` trained, from a random (R3) point with dense
  noise on every entry (from a fully random dense start Adam stalled at or above the one-layer
  optimum in our probes: L = 3, lr 1e-3 to 1e-2, 1500 steps, test loss 0.11 to 0.46).

Per layer we report the effective preconditioner ``A_l = -P_l[d, d] Q_l[:d, :d]`` (for the (R3) form
``P_l[d, d] = 1``) and what else is non-zero (cross blocks ``P_l[d, :d]``, ``Q_l[d, :d]``, the x-rows
``P_l[:d, :]``), its cosine with ``Lambda^{-1}``, ``Gamma^{-1}`` and ``I``, and its asymmetry; and
the held-out loss of the trained stack against the (R3) stack built from those ``A_l`` alone
(equal losses mean the stack *is* preconditioned gradient descent) and against the one-layer
optimum of (R4). Nothing about the form of the optimum is assumed.
"""

from __future__ import annotations

import time

import numpy as np
import torch

import lsa_theory as lt
from lsa_theory.constructions.algorithms import regression as reg
from lsa_theory.dynamics import regression as rg

__all__ = [
    "init_stack",
    "layers_of",
    "stack_loss",
    "train_stack",
    "spread",
    "layer_report",
    "stack_diverged",
    "train_stacks",
]

PARAMETERISATIONS = ("sparse", "full")


def init_stack(L: int, d: int, param: str, rng: np.random.Generator) -> list[torch.Tensor]:
    """Trainable tensors from a random (R3) point: ``A_l^0 = 0.2 I + 0.05 G_l`` (``G_l`` standard
    normal, so non-symmetric and not aligned with ``Lambda``). ``sparse``: the L matrices ``A_l``
    (d, d); ``full``: ``P_l = e_{d+1} e_{d+1}^T``, ``Q_l = [[-A_l^0, 0], [0, 0]]`` plus ``N(0, 0.05^2)``
    on *every* entry (d+1, d+1), so that nothing of (R3)'s sparsity is imposed after the start."""
    if param not in PARAMETERISATIONS:
        raise ValueError(f"param: expected one of {PARAMETERISATIONS}, got {param!r}")
    A0 = [0.2 * np.eye(d) + 0.05 * rng.standard_normal((d, d)) for _ in range(L)]
    if param == "sparse":
        mats = A0
    else:
        mats = []
        for P, Q in reg.precond_gd(A0):
            mats += [P + 0.05 * rng.standard_normal(P.shape), Q + 0.05 * rng.standard_normal(Q.shape)]
    return [torch.tensor(m, dtype=torch.float64, requires_grad=True) for m in mats]


def layers_of(params: list[torch.Tensor], param: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``[(P_l, Q_l)]`` of the stack from its trainable tensors."""
    if param == "full":
        return [(params[2 * l], params[2 * l + 1]) for l in range(len(params) // 2)]
    d = params[0].shape[0]
    layers = []
    for A in params:
        P = torch.zeros(d + 1, d + 1, dtype=torch.float64)
        P[d, d] = 1.0
        Q = torch.zeros(d + 1, d + 1, dtype=torch.float64)
        Q[:d, :d] = -A
        layers.append((P, Q))
    return layers


def stack_loss(layers, E: torch.Tensor, y_query: torch.Tensor) -> torch.Tensor:
    """``(1/2) mean_f (-E_L[-1, -1] - y_q)^2`` of the (W2) stack ``layers`` on prompts ``E`` (F, d+1, N+1)."""
    out = -lt.masked_lsa_stack(E, layers)[..., -1, -1]
    return 0.5 * ((out - y_query) ** 2).mean()


def _batch(F: int, N: int, Lambda: np.ndarray, rng: np.random.Generator):
    s = rg.sample_prompts(F, N, Lambda, rng)
    return torch.as_tensor(s.prompts()), torch.as_tensor(s.y_query)


def train_stack(
    L: int, param: str, Lambda: np.ndarray, N: int, steps: int, batch: int, lr: float, seed: int
) -> tuple[list[torch.Tensor], np.ndarray]:
    """Adam (learning rate ``lr``, divided by 10 for the last third of the ``steps``) on fresh
    batches of ``batch`` prompts; returns the trained tensors and the training-loss curve."""
    rng = np.random.default_rng([seed, 3, L, PARAMETERISATIONS.index(param)])
    params = init_stack(L, Lambda.shape[0], param, rng)
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[2 * steps // 3], gamma=0.1)
    curve = np.empty(steps)
    for i in range(steps):
        E, yq = _batch(batch, N, Lambda, rng)
        loss = stack_loss(layers_of(params, param), E, yq)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        curve[i] = loss.item()
    return params, curve


def _cos(A: np.ndarray, B: np.ndarray) -> float:
    return float(np.sum(A * B) / (np.linalg.norm(A) * np.linalg.norm(B)))


def spread(A: np.ndarray, Lambda: np.ndarray) -> float:
    """Ratio of the extreme singular values of ``Lambda^{1/2} A Lambda^{1/2}``: 1 exactly when
    ``A = a Lambda^{-1}`` (for symmetric A), ``cond(Lambda)`` for ``A = a I``."""
    lam, V = np.linalg.eigh(Lambda)
    R = (V * np.sqrt(lam)) @ V.T
    sv = np.linalg.svd(R @ A @ R, compute_uv=False)
    return float(sv.max() / sv.min())


def layer_report(P: np.ndarray, Q: np.ndarray, Lambda: np.ndarray, Gamma: np.ndarray) -> dict:
    """What one trained layer is: the effective ``A_l = -P[d, d] Q[:d, :d]`` and its cosines with
    ``Lambda^{-1}``, ``Gamma^{-1}``, ``I``, its :func:`spread` against ``Lambda^{-1}``; the norms of
    everything (R3) sets to zero."""
    d = Lambda.shape[0]
    A = -P[d, d] * Q[:d, :d]
    Linv = np.linalg.inv(Lambda)
    a = np.sum(A * Linv) / np.sum(Linv * Linv)
    return {
        "A": A,
        "p_y": float(P[d, d]),
        "cos_Lambda_inv": _cos(A, Linv),
        "cos_Gamma_inv": _cos(A, np.linalg.inv(Gamma)),
        "cos_identity": _cos(A, np.eye(d)),
        "scale_Lambda_inv": float(a),
        "resid_Lambda_inv": float(np.linalg.norm(A - a * Linv) / np.linalg.norm(A)),
        "asymmetry": float(np.linalg.norm(A - A.T) / np.linalg.norm(A)),
        "spread_A_Lambda": spread(A, Lambda),
        "norm_A": float(np.linalg.norm(A)),
        "norm_p_x": float(np.linalg.norm(P[d, :d])),
        "norm_q21": float(np.linalg.norm(Q[d, :d])),
        "norm_P_xrows": float(np.linalg.norm(P[:d, :])),
        "norm_Q_ycol": float(np.linalg.norm(Q[:, d])),
        "P": P,
        "Q": Q,
    }


def _test_loss(layers, E, y_query) -> float:
    return stack_loss([(torch.as_tensor(P), torch.as_tensor(Q)) for P, Q in layers], E, y_query).item()


def stack_diverged(curve: np.ndarray, test_loss: float, loss_zero: float) -> bool:
    """True when training diverged: a non-finite training or test loss, or a test loss above
    ``loss_zero = (1/2) tr(Lambda)``, the loss of the zero prediction (``E y_q^2 = tr Lambda`` under
    (R4)'s law), which any stack that learnt anything beats (every trained stack of the saved runs
    is below the one-layer optimum, itself below ``loss_zero``; Adam at ``lr = 1e6`` gave 2.2e24)."""
    return bool(not np.isfinite(curve).all() or not np.isfinite(test_loss) or test_loss > loss_zero)


def train_stacks(cfg, Lambda: np.ndarray) -> tuple[list[dict], dict]:
    """Train every ``L`` in ``cfg.layers`` in both parameterisations on the primary ``Lambda``;
    returns ``(rows, arrays)`` (rows for the JSON document, loss curves for the .npz).

    Each row records ``diverged`` (:func:`stack_diverged`) and ``loss_zero`` (the zero prediction's
    loss); a diverged stack's layers are not analysed (``layers`` empty, ``test_loss_as_pgd`` and
    ``pgd_gap`` None) and fails the run's verdict (``checks["trained_not_diverged"]``)."""
    N = cfg.N
    Gamma = rg.gamma_matrix(Lambda, N)
    loss_star_1 = 0.5 * float(np.trace(Lambda) - np.trace(Lambda @ Lambda @ np.linalg.inv(Gamma)))
    loss_zero = 0.5 * float(np.trace(Lambda))
    E_test, y_test = _batch(cfg.test_prompts, N, Lambda, np.random.default_rng([cfg.seed, 4]))
    rows, arrays = [], {}
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: one thread is fastest, and --threads cannot change them
    try:
        for L in cfg.layers:
            for param in PARAMETERISATIONS:
                t0 = time.perf_counter()
                params, curve = train_stack(
                    L, param, Lambda, N, cfg.train_steps, cfg.train_batch, cfg.train_lr, cfg.seed
                )
                with torch.no_grad():
                    layers = [
                        (P.detach().numpy().copy(), Q.detach().numpy().copy())
                        for P, Q in layers_of(params, param)
                    ]
                    test = _test_loss(layers, E_test, y_test)
                    diverged = stack_diverged(curve, test, loss_zero)
                    reports, test_pgd = [], None
                    if not diverged:
                        reports = [layer_report(P, Q, Lambda, Gamma) for P, Q in layers]
                        as_pgd = reg.precond_gd([r["A"] for r in reports])
                        test_pgd = _test_loss(as_pgd, E_test, y_test)
                rows.append(
                    {
                        "L": L,
                        "param": param,
                        "test_loss": test,
                        "test_loss_as_pgd": test_pgd,
                        "pgd_gap": None if test_pgd is None else (test_pgd - test) / test,
                        "one_layer_optimum": loss_star_1,
                        "loss_zero": loss_zero,
                        "diverged": diverged,
                        "train_loss_final": float(curve[-100:].mean()),
                        "layers": reports,
                        "steps": cfg.train_steps,
                        "wall_time": time.perf_counter() - t0,
                    }
                )
                arrays[f"trained/{L}/{param}/curve"] = curve
    finally:
        torch.set_num_threads(prev_threads)
    return rows, arrays
