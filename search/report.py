"""Write a study's report as HTML pages and tables.

    python -m search.report --study-name NAME [--storage URL] [--out DIR]

HTML pages of Plotly charts (default ``reports/NAME/``; they work offline) with ``index.html``,
the page to open (the study's trials, its best trial and every chart), ``summary.csv`` and
``summary.md``; an ofat study also gets the reference's figures. The last line printed is the
path of ``index.html``, for scripts; a folder that cannot be written is one line and exit 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import optuna

from search.cli import Parser, guarded
from search.study.storage.storage import (
    check_writable_folder,
    default_storage,
    load_existing_study,
    storage_help,
)
from search.views.report import PNG, folder_name, write_report


def report(args: argparse.Namespace) -> int:
    out = Path(args.out or Path("reports") / folder_name(args.study_name))
    # Before anything is made: a read-only or impossible --out is one line, not a traceback
    # from the first page written, and leaves no half-made folder behind.
    check_writable_folder(out, "--out")
    study = load_existing_study(args.storage, args.study_name)
    files = write_report(study, out)
    if importlib.util.find_spec(PNG) is None:
        print(f"PNG copies skipped: install {PNG} (pip install {PNG}) to get them")
    print(f"wrote {len(files)} files to {out}; open this page:")
    print(out / "index.html")  # alone on the last line, so a script can take it as it is
    return 0


def build_parser() -> Parser:
    p = Parser(
        prog="python -m search.report",
        description=__doc__.splitlines()[0],
        examples=[
            "python -m search.report --study-name mnist-ofat",
            "python -m search.report --study-name mnist-default-tpe "
            "--storage sqlite:///study_db/tpe.db --out reports/tpe",
        ],
    )
    p.add_argument("--study-name", required=True)
    p.add_argument("--storage", default=default_storage(), help=storage_help())
    p.add_argument("--out", default=None, help="default: reports/STUDY_NAME (made safe)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return guarded(lambda: report(args), args.debug)


if __name__ == "__main__":
    sys.exit(main())
