"""``python -m lsa_theory.experiments.sweep CONFIG [options]`` (same options as ``lsa-theory sweep``)."""

import sys

from . import main

sys.exit(main())
