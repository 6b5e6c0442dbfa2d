"""Diversity's verdicts on any machine (issue 18, items 1-2): every row verdict of ``lsa-theory
diversity`` (default and ``--quick``) is the same on its sample and on 5 copies perturbed at
relative 1e-13 (:func:`lsa_theory.roundoff.assert_same_verdicts`), and the same with 1 and 2 BLAS
threads. The verdict of a row (:func:`lsa_theory.experiments.diversity.kernel_verdict`, the only thing the
exit code depends on) is exact arithmetic on the context columns, so the flow is not run here.

The perturbation moves every float of the sample independently (features, rewards, targets); it
destroys the exact coincidences of a structured sample (a shared feature map, a reward column
r(s, a) repeated), so the certified kernel *dimension* moves with it (e.g. 19 -> 1 on the
single-MDP row): that dimension is a property of the exact sample, which every machine builds bit
for bit (copies and single products of the drawn tables); the verdict (kernel = (M4) tangent or
rank bound) is what must not move, and is asserted."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from lsa_theory.experiments import diversity as dv
from lsa_theory.roundoff import assert_same_verdicts


def _verdict(ds) -> bool:
    return dv.kernel_verdict(ds)[1]


def _rows(cfg):
    return list(enumerate(dv.diversity_rows(cfg)))


def _check_rows(cfg, indices=None):
    rng = np.random.default_rng(18)
    rows = _rows(cfg)
    out = {}
    for index, row in rows if indices is None else [rows[i] for i in indices]:
        ds, _ = dv.row_datasets(cfg, row, index)
        with threadpool_limits(1):
            out[index] = assert_same_verdicts(_verdict, ds, rng, copies=5)
    return out


def test_verdicts_survive_rounding_on_the_structured_rows():
    """The single-MDP shared-feature (M5) row (exact kernel 19, the richest structure) and the
    rank-bound row (3 frames) of ``--quick``: the same verdict, True, on 6 versions of the sample."""
    cfg = dv.DiversityConfig.quick()
    rows = _rows(cfg)
    idx = [i for i, r in rows if r["table"] == "rank_bound"] + [3]
    assert rows[3][1] | {"k": 1, "shared_features": True, "table": "M5", "reward": "sa"} == rows[3][1]
    assert _check_rows(cfg, idx) == dict.fromkeys(idx, True)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["quick", "default"])
def test_every_verdict_survives_rounding_and_threads(which):
    """Every row of the ``--quick`` (18) and default (27) configurations: the verdict is the same
    across 5 perturbed copies, True (the command's exit 0), and the certificate (verdict, kernel
    and tangent dimensions) of the unperturbed sample is the same with 1 and 2 BLAS threads."""
    cfg = dv.DiversityConfig.quick() if which == "quick" else dv.DiversityConfig()
    verdicts = _check_rows(cfg)
    assert len(verdicts) == (18 if which == "quick" else 27)
    assert all(verdicts.values()), [i for i, v in verdicts.items() if not v]
    for index, row in _rows(cfg):
        ds, _ = dv.row_datasets(cfg, row, index)
        certs = []
        for threads in (1, 2):
            with threadpool_limits(threads):
                cert, ok = dv.kernel_verdict(ds)
            certs.append((ok, cert.certified, cert.ker_dim, cert.tangent_dim, cert.lower, cert.upper))
        assert certs[0] == certs[1], (index, certs)
