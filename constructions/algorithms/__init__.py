"""[W]'s TD family, one algorithm per module (THEORY.md §5).

- :mod:`.td_precond`: (W4) preconditioned TD(0), any ``C_l`` per layer;
- :mod:`.td_lambda`: (W5) TD(lambda) through the eligibility-trace mask;
- :mod:`.residual_gradient`: (W6) residual gradient;
- :mod:`.td_average_reward`: (W7) average-reward TD with a running-mean head.

Each module holds its numeric construction, its sympy twin, a deliberately naive reference loop
(explicit Python loops using only ``+``, ``*``, ``/``, so it runs on sympy symbols too), its
prompt builder where it differs from (W1), a ``verify_*`` residual function and a fixed-size
``prove_*`` sympy proof. The public names are re-exported by :mod:`constructions`; this package
deliberately re-exports nothing, so that ``constructions.algorithms.td_lambda`` stays the module.
"""
