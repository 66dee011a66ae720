r"""Command line: ``formulahier fit DATA.csv "FORMULA"``, ``demo`` and ``data``.

Examples
--------
.. code-block:: bash

    formulahier fit sleepstudy.csv "Reaction ~ Days + (Days | Subject)" --draws 500 --seed 1
    formulahier fit cbpp "cbind(incidence, size - incidence) ~ period + (1 | herd)" \
        --family binomial --save cbpp.nc
    formulahier demo
    formulahier data sleepstudy > sleepstudy.csv

Errors on bad input print one line, ``formulahier: error: ...``, and exit with status 2. The
formula is checked against the safe grammar of :func:`formulahier.safety.check_formula_safe`
(column names, numbers, formula operators, a list of functions) before anything reads it, and the
folder of ``--save`` must exist before sampling starts.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import warnings
from pathlib import Path

from .settings import ModelOptions, SamplerSettings

__all__ = ["main"]

DEMO_FORMULA = "log_ozone ~ TEMP + (TEMP | station)"

EPILOG = """\
examples:
  formulahier fit sleepstudy.csv "Reaction ~ Days + (Days | Subject)"
  formulahier fit sleepstudy.csv "Reaction ~ Days + (Days || Subject)" --draws 500 --seed 1
  formulahier fit cbpp.csv "cbind(incidence, size - incidence) ~ period + (1 | herd)" \\
      --family binomial --save cbpp.nc
  formulahier demo
  formulahier data sleepstudy > sleepstudy.csv

formulas read as in lme4/brms: (x | g) correlated intercept and slope per level of g,
(x || g) independent ones, (1 | a/b) nested, (1 | a) + (1 | b) crossed.
"""


def _int_at_least(minimum: int):
    """An argparse type: a whole number no smaller than ``minimum``."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return convert


_positive = _int_at_least(1)
_non_negative = _int_at_least(0)


_S, _M = SamplerSettings(), ModelOptions()  # the defaults, as fh.fit has them


def _draws_and_chains(command: argparse.ArgumentParser, tune: bool = False) -> None:
    command.add_argument(
        "--draws", type=_positive, default=_S.draws, help=f"draws per chain ({_S.draws})"
    )
    if tune:
        command.add_argument(
            "--tune", type=_non_negative, default=_S.tune, help=f"warm-up per chain ({_S.tune})"
        )
    command.add_argument(
        "--chains", type=_positive, default=_S.chains, help=f"number of chains ({_S.chains})"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="formulahier",
        description=(
            "Bayesian multilevel models from lme4/brms formulas (Bambi + PyMC). "
            "Fits a model and prints a brms-style summary."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = sub.add_parser(
        "fit",
        help="fit FORMULA to a CSV file and print the summary",
        description="Fit an lme4/brms formula to a CSV file and print the brms-style summary.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fit.add_argument("data", help="CSV file with a header row (or a bundled data set's name)")
    fit.add_argument("formula", help='lme4/brms formula, e.g. "y ~ x + (x | g)"')
    fit.add_argument(
        "--family",
        default=_M.family,
        help=f"response family: {_M.family} (default), bernoulli, binomial, poisson, ...",
    )
    fit.add_argument("--link", default=None, help="link function (default: the family's)")
    _draws_and_chains(fit, tune=True)
    fit.add_argument("--seed", type=int, default=None, help="random seed (same seed, same draws)")
    param = fit.add_mutually_exclusive_group()
    param.add_argument(
        "--centered",
        action="store_const",
        const=False,
        dest="noncentered",
        default=_M.noncentered,
        help="hierarchically centered group effects (best with many observations per group); "
        "default: chosen per grouping factor from the data",
    )
    param.add_argument(
        "--noncentered",
        action="store_const",
        const=True,
        dest="noncentered",
        help="non-centered group effects (best with few observations per group)",
    )
    fit.add_argument(
        "--uncorrelated",
        action="store_true",
        help="independent group effects in every bar term, as if written with ||",
    )
    fit.add_argument(
        "--sampler", default=_S.sampler, help="auto (default), pymc, nutpie, numpyro, blackjax"
    )
    fit.add_argument(
        "--target-accept", type=float, default=None, help="NUTS target acceptance (e.g. 0.95)"
    )
    fit.add_argument("--ci", type=float, default=0.95, help="interval probability (0.95)")
    fit.add_argument("--save", metavar="FIT.nc", default=None, help="save the fit to this file")
    fit.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    fit.add_argument("--debug", action="store_true", help="show full tracebacks on errors")

    demo = sub.add_parser(
        "demo",
        help=f"fit the README's example '{DEMO_FORMULA}' on the bundled Beijing ozone data",
        description=f"Fit '{DEMO_FORMULA}' on the bundled Beijing ozone data (as in the README).",
    )
    _draws_and_chains(demo)
    demo.add_argument("--seed", type=int, default=1, help="random seed (1)")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    demo.add_argument("--debug", action="store_true", help="show full tracebacks on errors")

    data = sub.add_parser(
        "data",
        help="list the bundled data sets, or write one as CSV to standard output",
        description="Without NAME: list the bundled data sets. With NAME: print it as CSV.",
    )
    data.add_argument("name", nargs="?", default=None, help="data set name, e.g. sleepstudy")
    data.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    return parser


def _version() -> str:
    from .about import __version__

    return __version__


def _one_line(exc: BaseException) -> str:
    """Render an error as one line (a FormulaError's caret becomes a column number)."""
    from .errors import FormulaError

    if isinstance(exc, FormulaError) and exc.formula is not None:
        where = f" (column {exc.pos + 1})" if exc.pos is not None else ""
        return f"{exc.reason} In formula{where}: {exc.formula}"
    return " ".join(str(exc).split())


def _read_data(source: str):
    import pandas as pd

    from . import datasets
    from .errors import DataError

    path = Path(source)
    if not path.exists() and source in datasets.list_datasets():
        return datasets.load(source)
    if not path.exists():
        raise DataError(
            f"No such file: {source}. Give a CSV file, or one of the bundled data sets "
            f"{datasets.list_datasets()}."
        )
    try:
        frame = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"Cannot read {source} as CSV: {' '.join(str(exc).split())}") from None
    frame.attrs["name"] = path.stem  # the summary's "Data: sleepstudy (Number of ...)"
    return frame


def _save(result, path: str) -> None:
    from .errors import DataError, FormulahierError

    try:
        if hasattr(result, "save"):
            result.save(path)
        else:  # posterior only, as an ArviZ netCDF file
            result.idata.to_netcdf(path)
    except FormulahierError:  # FitFileError: already one clear line
        raise
    except OSError as exc:
        raise DataError(f"Cannot save the fit to {path}: {exc}") from None
    except ImportError as exc:  # netCDF needs h5netcdf + h5py (or netCDF4)
        raise DataError(
            f"Cannot save the fit to {path}: {exc} Install a netCDF backend with "
            "`pip install h5netcdf h5py`."
        ) from None


def _own_process() -> None:
    """Take the imported modules' objects out of the garbage collector's walks (:func:`gc.freeze`).

    The command owns its process, so what is tracked now lives until it exits: without this,
    the first summary's full collection and the 3-4 the interpreter runs while it exits walk
    about 200,000 module objects each (1-2 s of a sleepstudy run on a busy machine:
    docs/performance.md). The library itself never does this: it would freeze its caller's
    objects too, and a frozen object in a reference cycle (a closed matplotlib figure in a
    notebook) would never be reclaimed.
    """
    gc.freeze()


def _run(args, own_process: bool = False) -> int:
    import formulahier as fh

    if own_process and args.command in ("demo", "fit"):
        _ = fh.model  # the backend's import, then out of the collector's walks
        _own_process()

    if args.command == "data":
        if args.name is None:
            for name in fh.datasets.list_datasets():
                print(name)
            print("wage_panel (simulated: fh.datasets.simulate_wage_panel(seed=42))")
            return 0
        if args.name == "wage_panel":
            frame = fh.datasets.simulate_wage_panel(seed=42)
        else:
            frame = fh.datasets.load(args.name)
        frame.to_csv(sys.stdout, index=False)
        return 0

    if args.command == "demo":
        data = fh.datasets.load("ozone")
        print(
            f"Fitting {DEMO_FORMULA} to the bundled Beijing ozone data "
            f"({len(data)} days x stations, {data['station'].nunique()} stations).\n"
            "A gaussian model with one grouping factor: collapse='auto' integrates the station "
            "effects out while sampling and draws them exactly afterwards.",
            flush=True,
        )
        demo = SamplerSettings(
            draws=args.draws, chains=args.chains, seed=args.seed, progressbar=not args.no_progress
        )
        result = fh.fit(DEMO_FORMULA, data, **demo.keywords())
        print()
        print(result)
        return 0

    if not 0 < args.ci < 1:
        raise fh.DataError(f"--ci must be between 0 and 1, got {args.ci}.")
    from .io import check_destination
    from .safety import check_formula_safe

    check_formula_safe(args.formula)  # command-line text: the safe grammar (no code runs)
    if args.save:
        check_destination(args.save)  # a missing folder fails now, not after sampling
    data = _read_data(args.data)
    options = ModelOptions(
        family=args.family,
        link=args.link,
        correlated=not args.uncorrelated,
        noncentered=args.noncentered,
    )
    settings = SamplerSettings(
        sampler=args.sampler,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        seed=args.seed,
        progressbar=not args.no_progress,
        sampler_kwargs={} if args.target_accept is None else {"target_accept": args.target_accept},
    )
    result = fh.fit(args.formula, data, **options.keywords(), **settings.keywords())
    print()
    print(result.summary(ci_prob=args.ci))
    if args.save:
        _save(result, args.save)
        print(f"\nSaved the fit to {args.save}.")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 on success, 2 on bad input (one line on standard error), 1 on an
        unexpected failure, 130 when interrupted.

    """
    args = _parser().parse_args(argv)
    from .errors import FormulahierError

    warnings.simplefilter("ignore", FutureWarning)
    try:
        own_process = argv is None  # the command itself, not a call from Python (tests)
        status = _run(args, own_process)
        if own_process:
            _own_process()  # the fit's objects too: the interpreter's exit need not walk them
        return status
    except FormulahierError as exc:
        if args.debug:
            raise
        print(f"formulahier: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("formulahier: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `formulahier data sleepstudy | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout
        return 0
    except Exception as exc:  # anything else: still one line, unless --debug
        if args.debug:
            raise
        print(
            f"formulahier: error: {type(exc).__name__}: {_one_line(exc)} "
            "(run again with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
