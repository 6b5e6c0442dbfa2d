"""``lsa-theory reproduce --seed S`` (issue 13): every part's seeds shifted by ``S`` (``S = 0`` the
configuration of the documented results), the seed recorded in every result document's provenance,
and a resume with another seed refused unless ``--reuse``."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import lsa_theory.experiments.reproduce as rp
from lsa_theory import cli
from lsa_theory.experiments.envs import HELDOUT_NAME


class _Called(Exception):
    """Raised by a stubbed runner: what the part called it with."""

    def __init__(self, **kw):
        super().__init__(kw)
        self.kw = kw


def _stop(**names):
    def fake(*args, **kwargs):
        raise _Called(**{n: (args[i] if i < len(args) else kwargs[n]) for n, i in names.items()})

    return fake


def _stub_runners(monkeypatch):
    import lsa_theory.experiments.actor_critic_variants.experiment as acv  # where run() looks it up
    import lsa_theory.experiments.context_length as cl
    import lsa_theory.experiments.control as ctl
    import lsa_theory.experiments.converge as cv
    import lsa_theory.experiments.diversity as dv
    import lsa_theory.experiments.training as tr
    from lsa_theory import constructions

    monkeypatch.setattr(constructions.verify, "run_claims", _stop(rng=0))
    monkeypatch.setattr(cv, "run_converge", _stop(cfg=0))
    monkeypatch.setattr(dv, "run_diversity", _stop(cfg=0))
    monkeypatch.setattr(tr, "train_seeds", _stop(base=0, seeds=1))
    monkeypatch.setattr(tr, "diversity_training_sweep", _stop(seeds=99))
    monkeypatch.setattr(ctl, "run_control", _stop(cfg=0))
    monkeypatch.setattr(cl, "run_context_length", _stop(seed=99))
    monkeypatch.setattr(acv, "run_variants", _stop(seed=99))


def _seeds(name, kw):
    """The seeds a part passed to its runner."""
    if name == "verify":
        return int(kw["rng"].integers(2**62))
    if name.startswith("converge"):
        return kw["cfg"].seeds
    if name in ("diversity", "control"):
        return kw["cfg"].seed
    if name == "training":
        return kw["seeds"], kw["base"].seed
    return kw["seed"] if "seed" in kw else kw["seeds"]


@pytest.mark.parametrize("quick", [True, False])
def test_every_part_shifts_its_seeds_by_the_base_seed(tmp_path, monkeypatch, quick):
    from lsa_theory.experiments.context_length import ClosedLoopConfig
    from lsa_theory.experiments.control import ControlConfig
    from lsa_theory.experiments.converge import ConvergeConfig
    from lsa_theory.experiments.diversity import DiversityConfig

    _stub_runners(monkeypatch)
    # what the parts ran before --seed existed (the documented results)
    conv = ConvergeConfig.quick if quick else ConvergeConfig.full
    old = {
        "verify": int(np.random.default_rng(0).integers(2**62)),
        "converge-sarsa": conv("sarsa").seeds,
        "converge-actor_critic": conv("actor_critic").seeds,
        "diversity": (DiversityConfig.quick() if quick else DiversityConfig()).seed,
        "training": ((0,) if quick else rp.TRAIN_SEEDS, 0),
        "control": (ControlConfig.quick() if quick else ControlConfig()).seed,
        "training-diversity": (0,) if quick else rp.TRAIN_SEEDS,
        "context-length": ClosedLoopConfig().seed,
        "actor-critic-variants": 0,
    }
    assert set(old) == set(rp.PARTS)
    for name, part in rp.PARTS.items():
        got = {}
        for seed in (0, 7):
            with pytest.raises(_Called) as exc:
                part(tmp_path / name, quick, seed)
            got[seed] = _seeds(name, exc.value.kw)
        assert got[0] == old[name], name  # the default is exactly the old configuration
        assert got[7] == _shifted(name, old[name], 7), name


def _shifted(name, old, seed):
    if name == "verify":
        return int(np.random.default_rng(seed).integers(2**62))
    if name == "training":  # the seeds shifted; train_seeds sets base.seed = s per run
        return tuple(s + seed for s in old[0]), old[1]
    return tuple(s + seed for s in old) if isinstance(old, tuple) else old + seed


def _tiny_control(monkeypatch):
    import lsa_theory.experiments.control as ctl

    tiny = ctl.ControlConfig(
        envs=(HELDOUT_NAME,), actor_critic_envs=(), n=10, n_updates=20, eval_every=5, n_heldout=2, n_seeds=1
    )
    monkeypatch.setattr(ctl.ControlConfig, "quick", classmethod(lambda cls: tiny))
    return tiny


def _numbers(out):
    envs = json.loads((out / "control" / "constructed" / "control.json").read_text())["envs"]
    return [{k: v for k, v in e.items() if k != "wall_time"} for e in envs]


def test_seed_is_recorded_and_changes_the_results(tmp_path, monkeypatch):
    import lsa_theory.experiments.control as ctl

    tiny = _tiny_control(monkeypatch)
    for name, seed in (("a", 0), ("b", 0), ("c", 3)):
        rp.reproduce(tmp_path / name, quick=True, parts=["control"], seed=seed)
    docs = sorted((tmp_path / "c").rglob("*.json"))
    assert len(docs) >= 2  # summary.json, control/constructed/control.json
    for path in docs:
        assert json.loads(path.read_text())["provenance"]["seed"] == 3, path
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert summary["seed"] == 3 and summary["parts"]["control"]["seed"] == 3
    a, b, c = (_numbers(tmp_path / n) for n in "abc")
    assert a == b  # same seed: identical
    assert [e["normalized_return"] for e in a] != [e["normalized_return"] for e in c]
    # the default seed is the old behaviour: the unshifted quick configuration
    old = ctl.run_control(tiny, tmp_path / "old")["envs"]
    assert a == [{k: v for k, v in e.items() if k != "wall_time"} for e in old]
    assert dataclasses.replace(tiny, seed=3) != tiny


def _run(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_resume_refuses_another_seed_unless_reuse(tmp_path, monkeypatch, capsys):
    calls = []
    part = lambda o, q, s: calls.append(s) or {"ok": True}  # noqa: E731
    monkeypatch.setattr(rp, "PARTS", {"a": part, "b": part})
    rc, _, _ = _run(["reproduce", "--out", str(tmp_path), "--parts", "a", "--seed", "1"], capsys)
    assert rc == 0 and calls == [1]
    assert json.loads((tmp_path / "provenance.json").read_text())["seed"] == 1
    rc, _, err = _run(["reproduce", "--out", str(tmp_path), "--parts", "a", "--seed", "2"], capsys)
    assert rc == 2 and "seed 1" in err and "--reuse" in err and calls == [1]
    with pytest.raises(ValueError, match="^seed: .* seed 1, this run has seed 2"):
        rp.reproduce(tmp_path, parts=["a"], seed=2)  # the API refuses as well
    argv = ["reproduce", "--out", str(tmp_path), "--parts", "a", "b", "--seed", "2", "--reuse"]
    rc, out, _ = _run(argv, capsys)
    assert rc == 0 and "a" in out.splitlines()[0] and "skipped" in out.splitlines()[0] and calls == [1, 2]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["seed"] == 2 and summary["parts"]["a"]["seed"] == 1 and summary["parts"]["b"]["seed"] == 2
    rc, _, _ = _run(["reproduce", "--out", str(tmp_path / "new"), "--parts", "a"], capsys)
    assert rc == 0 and calls == [1, 2, 0]  # default seed 0
    rc, _, err = _run(["reproduce", "--out", str(tmp_path / "neg"), "--seed", "-1"], capsys)
    assert rc == 2 and "--seed" in err


def test_documents_with_a_seed_list_record_it(tmp_path):
    """``seeds.json`` / ``diversity_training.json`` of the training parts hold ``seeds`` at the top."""
    from lsa_theory.experiments.io import atomic_write_json

    atomic_write_json(tmp_path / "a.json", {"seeds": [3, 4], "rows": []})
    atomic_write_json(tmp_path / "b.json", {"config": {"seed": 5}, "rows": []})
    atomic_write_json(tmp_path / "c.json", {"seed": 6, "config": {"seed": 5}})
    got = [json.loads((tmp_path / f"{n}.json").read_text())["provenance"]["seed"] for n in "abc"]
    assert got == [[3, 4], 5, 6]
