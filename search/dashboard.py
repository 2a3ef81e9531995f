"""Start optuna-dashboard on a study database and its artifacts.

    python -m search.dashboard [--storage sqlite:///study_db/mnist.db] [--host 127.0.0.1]
                               [--port 8080]
It binds to this machine only unless told otherwise: the dashboard has no authentication.
``--port 0`` lets the system choose a free port; the first line printed names the address.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import optuna

from search.cli import Parser, guarded
from search.errors import SearchError
from search.study.storage import artifact_dir_for, default_storage, open_storage, storage_help
from search.views.dashboard import LOCAL_HOSTS, dashboard_server


def port_number(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m search.dashboard", description=__doc__.splitlines()[0])
    p.add_argument("--storage", default=default_storage(), help=storage_help())
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port_number, default=8080, help="0: any free port")
    p.add_argument(
        "--artifact-dir",
        default=None,
        help="default: artifacts/ beside an SQLite file, else study_db/artifacts",
    )
    args = p.parse_args(argv)
    if args.host not in LOCAL_HOSTS:
        print(
            f"warning: serving on {args.host}:{args.port}; optuna-dashboard has no "
            "authentication, so anyone who can reach it can read and change your studies",
            file=sys.stderr,
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def serve() -> int:
        storage = open_storage(args.storage, must_exist=True)
        artifacts = Path(args.artifact_dir or artifact_dir_for(args.storage))
        try:
            server = dashboard_server(storage, args.host, args.port, artifacts)
        except OSError as e:
            shown = f"{args.host}:{args.port}"
            raise SearchError(f"--port: cannot serve on {shown}: {e.strerror}") from None
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"optuna-dashboard on http://{host}:{server.server_port}/ (Ctrl-C stops it)")
        sys.stdout.flush()
        with server:
            try:
                server.serve_forever()
            except KeyboardInterrupt:  # how a user stops a server: not a failure
                pass
        return 0

    return guarded(serve, args.debug)


if __name__ == "__main__":
    sys.exit(main())
