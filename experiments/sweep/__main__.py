"""``python -m experiments.sweep CONFIG [options]`` (same options as ``lsa-theory sweep``)."""

import sys

from . import main

sys.exit(main())
