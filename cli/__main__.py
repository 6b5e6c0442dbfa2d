"""``python -m lsa_theory.cli``: the ``lsa-theory`` command."""

import sys

from lsa_theory.cli import main

sys.exit(main())
