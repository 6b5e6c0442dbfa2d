"""Experiments as folders with one face (issue 19, step 4): ``Config`` (frozen, ``quick()`` and
``full()``), ``units``, ``run_unit``, ``run`` and ``plot`` on every experiment folder's
``__init__``; sweep's jobs go through the faces."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect

import pytest

FOLDERS = (
    "converge",
    "diversity",
    "regression",
    "training",
    "actor_critic_variants",
    "control",
    "context_length",
    "pretrain",
    "autoregressive",
    "distill",
    "td_pretrain",
    "attention",
    "depth",
    "sweep",
)

#: Folders that draw no figure: their face says so (``No :func:`plot```) and has no ``plot``.
NO_FIGURE = ("sweep",)


@pytest.mark.parametrize("name", FOLDERS)
def test_every_experiment_folder_has_the_same_face(name):
    face = importlib.import_module(f"lsa_theory.experiments.{name}")
    assert face.__file__.endswith(f"experiments/{name}/__init__.py")
    for attr in ("Config", "units", "run_unit", "run") + (() if name in NO_FIGURE else ("plot",)):
        assert callable(getattr(face, attr)), (name, attr)
        assert attr in face.__all__, (name, attr)
    if name in NO_FIGURE:
        assert not hasattr(face, "plot") and "plot" not in face.__all__, name
        assert "No :func:`plot`" in face.__doc__, name
    cfg = face.Config.quick()
    assert isinstance(cfg, face.Config) and isinstance(face.Config.full(), face.Config)
    assert dataclasses.is_dataclass(cfg) and face.Config.__dataclass_params__.frozen
    units = face.units(cfg)
    assert isinstance(units, list) and units, name


#: The folders whose body is ``experiment.py`` behind a thin face.
THIN = tuple(n for n in FOLDERS if importlib.util.find_spec(f"lsa_theory.experiments.{n}.experiment"))


def test_the_thin_faces_are_the_ones_expected():
    assert set(FOLDERS) - {"training", "pretrain", "sweep"} <= set(THIN)


@pytest.mark.parametrize("name", FOLDERS)
def test_a_face_defines_nothing(name):
    """A face is imports, ``__all__`` and aliases: no function or class is written in an
    experiment folder's ``__init__.py`` (the body lives in the folder's modules)."""
    import ast

    face = importlib.import_module(f"lsa_theory.experiments.{name}")
    tree = ast.parse(open(face.__file__).read())
    defined = [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    assert not defined, (name, defined)


@pytest.mark.parametrize("name", THIN)
def test_the_face_keeps_every_public_name_of_the_experiment_module(name):
    """A thin face (the body in ``experiment.py``) still serves every public name of it: the same
    object from ``lsa_theory.experiments.<name>`` as from its ``experiment`` module."""
    face = importlib.import_module(f"lsa_theory.experiments.{name}")
    body = importlib.import_module(f"lsa_theory.experiments.{name}.experiment")
    missing = [n for n in body.__all__ if getattr(face, n, None) is not getattr(body, n)]
    assert not missing, (name, missing)


def test_unit_keys_are_unique_and_name_the_saved_units():
    from lsa_theory.experiments import control, converge, diversity, regression, sweep

    for face in (converge, diversity, control, sweep):
        for cfg in (face.Config.quick(), face.Config.full()):
            keys = [u.key for u in face.units(cfg)]
            assert len(keys) == len(set(keys)), face.__name__
    keys = regression.units(regression.Config.quick())
    assert keys[-3:] == ["sampled", "gamma", "trained"] and len(keys) == len(set(keys))
    with pytest.raises(ValueError, match="key: expected one of"):
        regression.run_unit(regression.Config.quick(), "nope")


def test_sweep_jobs_call_faces_not_private_unit_functions():
    from lsa_theory.experiments.sweep import jobs

    source = inspect.getsource(jobs)
    for private in ("_one_run", "_row(", "_run_unit", "_MDPCache", "_algorithm"):
        assert private not in source, private
