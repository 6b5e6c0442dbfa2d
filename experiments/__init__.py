"""The experiment drivers behind the ``lsa-theory`` command line (:mod:`lsa_theory.cli`).

Imports go outward only: ``lsa_theory`` (the core) <- ``lsa_theory.constructions`` <-
``lsa_theory.dynamics`` <- ``lsa_theory.experiments`` <- ``lsa_theory.cli``.

An experiment in a folder (``converge``, ``diversity``, ``regression``, ``training``,
``actor_critic_variants``, ``control``, ``context_length``, ``pretrain``) has one face, its
``__init__``: ``Config`` (frozen, with ``quick()`` and ``full()``), ``units(cfg)``,
``run_unit(cfg, unit)``, ``run(cfg, out)`` and ``plot(out)`` (from saved results); ``sweep``'s
face is the same without ``plot`` (it draws no figure). Finished units are kept by the one unit
store (:mod:`lsa_theory.experiments.store`: resume by unit key and config hash, atomic writes)
and summarised by the one statistics module (:mod:`lsa_theory.experiments.stats`).
"""
