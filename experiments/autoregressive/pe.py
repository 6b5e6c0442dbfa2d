r"""(AR10), measured: a one-layer multi-head linear attention on non-augmented tokens with learned
positional weights, trained by Adam on the rotation law (AR1).

Tokens ``e_t = s_t``, ``t = 0..T`` (``s_0`` included, as in [Sa]'s code); position ``t = 1..T``
predicts ``s_{t+1}``. Head ``h`` has value ``V_h s_j + b_h``, content score
``(Q_h s_t + q_h)^T (K_h s_j + k_h)`` and a learned positional weight ``p_h[t, j]`` (causal,
``j <= t``), [Sa]'s "content score multiplied by a positional matrix" without softmax or LayerNorm:

.. math:: \hat s_{t+1} = c + \sum_h \sum_{j \le t} p_h[t, j]\,(V_h s_j + b_h)\,
          (Q_h s_t + q_h)^\top (K_h s_j + k_h).

``biases=False`` drops ``b_h``, ``q_h``, ``k_h`` and ``c``. The trained model's loss is evaluated on
the exact quadrature (:func:`lsa_theory.dynamics.autoregressive.quadrature`; the squared error is a
trigonometric polynomial of degree at most ``6T`` per angle) and compared with the zero predictor
(loss 1) and the GD-class optimum ``L*`` on augmented tokens (AR7).

Exact prediction (ours, the parity argument of (AR10)): without biases every term of the cross
term ``E[s_{t+1}^T shat]`` has an odd phase exponent, so the best such model is the zero predictor,
whatever the positional weights. With biases the terms of odd degree in ``s`` survive only when the
start phase is fixed (with the random phase they average to 0 over ``psi``), so a fixed start
``s_0`` is what such a model can exploit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from lsa_theory.autoregressive import PHASES, rotation_sequences
from lsa_theory.checks import check_int, check_real
from lsa_theory.dynamics import autoregressive as da

__all__ = ["PEConfig", "train_pe", "pe_predictions"]


@dataclass(frozen=True)
class PEConfig:
    """``d``, ``T``; ``heads``; Adam ``steps`` of ``batch`` fresh sequences at rate ``lr``; ``phase``
    of (AR1) (``"random"`` or ``"fixed"``); ``biases``; ``init`` the scale of the initial weights."""

    d: int = 2
    T: int = 10
    heads: int = 4
    steps: int = 1500
    batch: int = 256
    lr: float = 1e-2
    phase: str = "random"
    biases: bool = True
    init: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        """Every field checked; ValueError naming the field."""
        if check_int(self.d, "d", minimum=2) % 2:
            raise ValueError(f"d: the rotation law needs an even d, got {self.d}")
        for name in ("T", "heads", "steps", "batch"):
            check_int(getattr(self, name), name)
        check_real(self.lr, "lr", low=0.0, low_open=True)
        check_real(self.init, "init", low=0.0, low_open=True)
        check_int(self.seed, "seed", minimum=0)
        if self.phase not in PHASES:
            raise ValueError(f"phase: expected one of {PHASES}, got {self.phase!r}")
        if not isinstance(self.biases, bool):
            raise ValueError(f"biases: expected a bool, got {self.biases!r}")


def _params(cfg: PEConfig, rng: np.random.Generator) -> dict:
    import torch

    H, d, T = cfg.heads, cfg.d, cfg.T
    s = cfg.init

    def t(shape):
        return torch.tensor(s * rng.standard_normal(shape), dtype=torch.float64, requires_grad=True)

    p = {"V": t((H, d, d)), "Q": t((H, d, d)), "K": t((H, d, d)), "P": t((H, T + 1, T + 1))}
    if cfg.biases:
        p.update({"b": t((H, d)), "q": t((H, d)), "k": t((H, d)), "c": t((d,))})
    return p


def pe_predictions(params: dict, s):
    """``shat_{t+1}`` (n, T, d), t = 1..T, of the model (module docstring) from ``s`` (n, T + 2, d)
    holding ``s_0..s_{T+1}`` (torch float64; the last state is the last target)."""
    import torch

    x = s[:, :-1]  # tokens s_0..s_T: (n, T + 1, d)
    n, L, d = x.shape
    mask = torch.tril(torch.ones(L, L, dtype=x.dtype))
    val = torch.einsum("hij,ntj->nhti", params["V"], x)
    qry = torch.einsum("hij,ntj->nhti", params["Q"], x)
    key = torch.einsum("hij,ntj->nhti", params["K"], x)
    if "b" in params:
        val = val + params["b"][None, :, None, :]
        qry = qry + params["q"][None, :, None, :]
        key = key + params["k"][None, :, None, :]
    score = torch.einsum("nhti,nhji->nhtj", qry, key) * (params["P"] * mask)[None]
    out = torch.einsum("nhtj,nhji->nti", score, val)
    if "c" in params:
        out = out + params["c"]
    return out[:, 1:]  # positions 1..T


def _loss(params: dict, s, w=None):
    err = ((pe_predictions(params, s) - s[:, 2:]) ** 2).sum(-1).mean(-1)
    return err.mean() if w is None else (w * err).sum()


def train_pe(cfg: PEConfig) -> dict:
    """Train the model of the module docstring and return ``{"config", "loss_exact" (quadrature of
    the trained model), "loss_zero" (1: the zero predictor), "loss_gd_class" (L* of (AR7), augmented
    tokens), "loss_history" (every 100 steps, on the batch), "p_mass_by_key" (mean |p_h[t, j]| over
    heads and the positions t >= max(j, 1) that predict, key position j = 0..T)}``."""
    import torch

    rng = np.random.default_rng([cfg.seed, 7])
    params = _params(cfg, rng)
    opt = torch.optim.Adam(list(params.values()), lr=cfg.lr)
    history = []
    for step in range(cfg.steps):
        seq = rotation_sequences(cfg.batch, cfg.d, cfg.T, rng, phase=cfg.phase)
        s = torch.tensor(seq.s, dtype=torch.float64)
        opt.zero_grad()
        loss = _loss(params, s)
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == cfg.steps - 1:
            history.append((step, float(loss.detach())))
    q = da.quadrature(cfg.d, cfg.T, cfg.phase)
    with torch.no_grad():
        exact = float(_loss(params, torch.tensor(q.s), torch.tensor(q.w)))
        P = (params["P"] * torch.tril(torch.ones(cfg.T + 1, cfg.T + 1, dtype=torch.float64))).abs().numpy()
    by_key = [float(P[:, max(j, 1) :, j].mean()) for j in range(cfg.T + 1)]
    return {
        "config": asdict(cfg),
        "loss_exact": exact,
        "loss_zero": 1.0,
        "loss_gd_class": da.loss_star(cfg.d, cfg.T),
        "loss_history": history,
        "p_mass_by_key": by_key,
    }
