"""Outermost layer: the ``lsa-theory`` command line and the experiment drivers.

Imports go ``lsa_theory`` <- ``constructions`` <- ``dynamics`` <- ``experiments``.

An experiment in a folder (``converge``, ``diversity``, ``regression``, ``training``,
``actor_critic_variants``, ``sweep``) has one face, its ``__init__``: ``Config`` (frozen, with
``quick()`` and ``full()``), ``units(cfg)``, ``run_unit(cfg, unit)``, ``run(cfg, out)`` and
``plot(out)`` (from saved results). Finished units are kept by the one unit store
(:mod:`experiments.store`: resume by unit key and config hash, atomic writes) and summarised by the
one statistics module (:mod:`experiments.stats`).
"""
