"""Run the input properties of tests/test_errors.py on many cases and print counts.

Every case is one call of the public API (``fh.model``, ``fh.fit``, ``Model.fit``,
``Fit.predict``) with generated formulas, data, options, priors dicts or prediction inputs; a
case knows whether it must be refused. Nothing is sampled: ``Model.build`` (the first step after
the checks of ``Model.fit``) is replaced by a stop, and predictions use one fit made with
mocked sampling. Counted:

* ``refused``: our error (by class), ``accepted``: built without error;
* ``foreign``: an exception that is not a FormulahierError escaped (goal: 0);
* ``bare``: the root FormulahierError itself, not a specific subclass (goal: 0);
* ``silent``: a case that must be refused was accepted (goal: 0);
* ``mutated``: the user's data changed (goal: 0);
* ``overcautious``: a case that must be accepted was refused (informative).

Usage::

    python scripts/fuzz_inputs.py [--cases 10000] [--seed 0]

Exit status 1 if any foreign or bare exception, silent acceptance or mutation was found.
"""

from __future__ import annotations

import argparse
import collections
import resource
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

GB = 1024**3


def main(argv: list[str] | None = None) -> int:
    """Run the cases; print the counts; 1 on a foreign or bare error, silence or mutation."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-gb", type=float, default=8.0)
    args = parser.parse_args(argv)
    limit = int(args.memory_gb * GB)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # a runaway case fails, not the host
    warnings.simplefilter("ignore")

    import test_errors as props
    from hypothesis import HealthCheck, Phase, given, seed, settings

    counts: collections.Counter[str] = collections.Counter()
    by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    examples: dict[str, list[str]] = collections.defaultdict(list)
    start = time.perf_counter()

    @seed(args.seed)
    @settings(
        max_examples=args.cases,
        deadline=None,
        database=None,
        phases=[Phase.generate],  # no shrinking: every case is counted once
        suppress_health_check=list(HealthCheck),
    )
    @given(case=props.all_cases())
    def run(case):
        status, detail = props.run_case(case)
        kind = case.label.split("[", 1)[0].split("(", 1)[0].split(" ", 1)[0]
        counts["cases"] += 1
        counts[status] += 1
        by_kind[kind][status] += 1
        if status == "refused":
            counts[f"refused:{detail}"] += 1
        elif status != "accepted" and len(examples[status]) < 8:
            examples[status].append(f"{case.label[:300]}\n      -> {detail}")
        if counts["cases"] % 500 == 0:
            rate = counts["cases"] / (time.perf_counter() - start)
            print(f"  {counts['cases']:>6} cases ({rate:.1f}/s)", file=sys.stderr, flush=True)

    run()
    seconds = time.perf_counter() - start
    print(f"cases: {counts['cases']} in {seconds:.0f} s")
    print(f"accepted: {counts['accepted']}")
    print(f"refused with our error: {counts['refused']}")
    for key in sorted(k for k in counts if k.startswith("refused:")):
        print(f"    {key.split(':', 1)[1]}: {counts[key]}")
    for status in ("foreign", "bare", "silent", "mutated", "overcautious"):
        print(f"{status}: {counts[status]}")
    print("by kind of case:")
    for kind, table in sorted(by_kind.items()):
        print(f"    {kind}: " + ", ".join(f"{k} {v}" for k, v in sorted(table.items())))
    for status, lines in examples.items():
        print(f"\nfirst {status} cases:")
        for line in lines:
            print(f"  - {line}")
    return 1 if counts["foreign"] or counts["bare"] or counts["silent"] or counts["mutated"] else 0


if __name__ == "__main__":
    sys.exit(main())
