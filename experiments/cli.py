"""``lsa-theory`` command line.

``lsa-theory verify [--json] [--quick] [--seed N]`` checks every construction claim of THEORY.md
on fresh random instances (see :func:`constructions.run_claims`) and prints a table; the exit
code is 1 if any row fails. ``--json`` prints ``{"rows": [{"claim", "residual", "tol", "passed"},
...]}`` (each row also carries ``check``, what it checks).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence

import numpy as np


def _json_float(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _cmd_verify(args: argparse.Namespace) -> int:
    from constructions.verify import run_claims

    seed = args.seed if args.seed is not None else int(np.random.SeedSequence().entropy % 2**32)
    rows = run_claims(np.random.default_rng(seed), quick=args.quick)
    ok = all(r.passed for r in rows)
    if args.json:
        doc = {
            "rows": [
                {
                    "claim": r.claim,
                    "check": r.check,
                    "residual": _json_float(r.residual),
                    "tol": r.tol,
                    "passed": r.passed,
                }
                for r in rows
            ],
            "seed": seed,
            "quick": args.quick,
            "passed": ok,
        }
        print(json.dumps(doc, indent=2))
    else:
        width = max(len(r.check) for r in rows)
        print(f"lsa-theory verify  seed={seed}  quick={args.quick}")
        print(f"{'claim':<6}  {'check':<{width}}  {'residual':>10}  {'tol':>8}  result")
        for r in rows:
            print(
                f"{r.claim:<6}  {r.check:<{width}}  {r.residual:>10.2e}  {r.tol:>8.0e}  "
                f"{'pass' if r.passed else 'FAIL'}"
            )
        print(f"{sum(r.passed for r in rows)}/{len(rows)} claims pass")
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lsa-theory", description="Check the theory of in-context RL in linear self-attention."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("verify", help="check every construction claim on fresh random instances")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--quick", action="store_true", help="small sizes (S = A = 3), fewer instances")
    p.add_argument("--seed", type=int, default=None, help="seed of the instances (default: fresh)")
    p.set_defaults(func=_cmd_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lsa-theory``; returns the exit code."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
