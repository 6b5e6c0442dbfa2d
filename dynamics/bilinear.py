r"""Teacher mimicking for any registered algorithm whose readout is bilinear: (M1)/(M2) from instances.

For a declaration ``alg`` (:class:`lsa_theory.constructions.Algorithm`) one layer's readout increment is
bilinear in two parameter blocks (:meth:`~lsa_theory.constructions.Algorithm.effective_blocks`):

.. math:: \mathrm{readout}(TF(Z)) - \mathrm{readout}(Z) = A\,\Sigma\,B\,\tilde w, \qquad
          \Sigma = \tfrac1n X X^\top,

with ``wt`` the last column: for (L1) the (L2) form ``Vbar21 Sigma P12 wt`` on
``{P22 = 0, Vbar22 = 0}``, for the (W2) value readout ``-p^T Sigma Q q`` exactly. A frame is one
instance drawn by ``alg.draw`` with target ``y_f = teacher(inst) - readout(Z_f)`` (the teacher's
increment; ``teacher`` is the vectorised ``teacher_readout`` where declared, else the naive loop).
The (M2) objective, its gradient, Hessian, the flow, the manifold (M4) and richness (M5) of
:mod:`lsa_theory.dynamics` then apply unchanged (they read ``Sigma``, ``wt``, ``y`` and the shapes).

This is the generic counterpart of :func:`lsa_theory.dynamics.teacher_dataset`, whose frames come from the
closed loop (S6)/(A5) instead of independent instances.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lsa_theory.checks import check_int
from lsa_theory.constructions import Algorithm, derive

from .objective import Shapes, pack, unpack

__all__ = ["BilinearDataset", "instance_dataset", "effective_theta", "full_params"]


@dataclass(frozen=True, eq=False)
class BilinearDataset:
    """Frames of :func:`instance_dataset`: ``Sigma`` (F, m, m), ``wt`` (F, p), targets ``y`` (F, k),
    ``mdp`` (F,) the instance index of each frame, and the declaration, sizes and hyperparameters."""

    alg: Algorithm
    sizes: Mapping[str, int]
    hyper: Mapping[str, Any]
    Sigma: np.ndarray
    wt: np.ndarray
    y: np.ndarray
    mdp: np.ndarray = field(repr=False)

    @property
    def effective_shapes(self) -> Shapes:
        return Shapes(self.y.shape[1], self.Sigma.shape[1], self.wt.shape[1])

    @property
    def n_frames(self) -> int:
        return self.Sigma.shape[0]


def instance_dataset(
    alg: Algorithm,
    sizes: Mapping[str, int],
    n_frames: int,
    rng: np.random.Generator,
    hyper: Mapping | None = None,
) -> BilinearDataset:
    """``n_frames`` independent instances of ``alg`` at ``sizes`` (module docstring)."""
    if not isinstance(alg, Algorithm):
        raise ValueError(f"alg: expected an Algorithm declaration, got {type(alg).__name__}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected numpy.random.Generator, got {type(rng).__name__}")
    if not alg.bilinear:
        raise ValueError(f"alg: {alg.name} declares no bilinear (M2) form (bilinear = False)")
    F = check_int(n_frames, "n_frames")
    hyper = {**alg.hyper, **(hyper or {})}
    teacher = getattr(alg, "teacher_readout", None) or alg.naive
    Sig, wts, ys = [], [], []
    for _ in range(F):
        inst = alg.draw(sizes, rng)
        X, last = (np.asarray(a, dtype=np.float64) for a in alg.columns(inst, hyper))
        Z = derive.prompt(alg, X, last)
        Sig.append(X @ X.T / X.shape[1])
        wts.append(last)
        ys.append(np.asarray(teacher(inst, hyper, 1), dtype=np.float64) - np.asarray(alg.readout(Z, sizes)))
    return BilinearDataset(alg, dict(sizes), hyper, np.stack(Sig), np.stack(wts), np.stack(ys), np.arange(F))


def effective_theta(ds: BilinearDataset, P: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``theta = [vec(A); vec(B)]`` of full parameters through ``alg.effective_blocks``."""
    A, B = ds.alg.effective_blocks(np.asarray(P, dtype=np.float64), np.asarray(V, dtype=np.float64), ds.sizes)
    return pack(A, B)


def full_params(ds: BilinearDataset, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The full ``(P, V)`` of ``theta`` (every entry outside ``A`` and ``B`` zero)."""
    A, B = unpack(theta, ds.effective_shapes)
    return ds.alg.embed(A, B, ds.sizes)
