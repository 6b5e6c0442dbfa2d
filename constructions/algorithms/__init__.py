"""One module per in-context algorithm: its construction, sympy twin, naive loop, prompt, checks.

- :mod:`.regression`: (R1) prompt, (R2) one gradient step [vO] and (R3) preconditioned gradient
  descent [Ahn] on the masked block (W2), and the one-layer prediction from statistics of (R4).
"""

from . import regression

__all__ = ["regression"]
