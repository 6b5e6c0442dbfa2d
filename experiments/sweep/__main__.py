"""``python -m lsa_theory.experiments.sweep CONFIG [options]`` (same options as ``lsa-theory sweep``)."""

import sys

from .command import main

sys.exit(main())
