"""Start optuna-dashboard on a study database and its artifacts.

    python -m search.dashboard [--storage sqlite:///study_db/mnist.db] [--host 127.0.0.1]
                               [--port 8080] [--artifact-dir DIR]
It binds to this machine only unless told otherwise: the dashboard has no authentication.
``--port 0`` lets the system choose a free port; the first line printed names the address.
A database this user cannot write (someone else's, a read-only copy) is served read-only, as
``search.report`` reads it; if its default artifact folder cannot be made either, the study is
served without artifacts (there can be none there) rather than refused.
"""

from __future__ import annotations

import argparse
import errno
import socket
import sys
from pathlib import Path

import optuna

from search.cli import Parser, guarded
from search.errors import SearchError, StorageError, UsageError
from search.study.storage.storage import (
    artifact_dir_for,
    default_storage,
    open_storage,
    storage_help,
)
from search.views.dashboard import LOCAL_HOSTS, bound_server, serve_study

EXAMPLES = [
    "python -m search.dashboard",
    "python -m search.dashboard --storage sqlite:///runs/tpe.db --port 0",
    "python -m search.dashboard --host 0.0.0.0 --port 8081   # other machines too",
]


def port_number(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return int(text)


def build_parser() -> Parser:
    p = Parser(
        prog="python -m search.dashboard",
        description=__doc__.splitlines()[0],
        examples=EXAMPLES,
    )
    p.add_argument("--storage", default=default_storage(), help=storage_help())
    p.add_argument("--host", default="127.0.0.1", help="the address to serve on")
    p.add_argument("--port", type=port_number, default=8080, help="0: any free port")
    p.add_argument(
        "--artifact-dir",
        default=None,
        help="default: artifacts/ beside an SQLite file, else study_db/artifacts",
    )
    return p


def bind_error(e: OSError, host: str, port: int) -> SearchError:
    """The option to blame for a server that cannot bind, and why."""
    reason = (e.strerror or str(e)).lower()
    if isinstance(e, socket.gaierror):  # the name, not the port: a usage error
        return UsageError(f"--host {host}: unknown host ({reason})")
    if e.errno == errno.EADDRNOTAVAIL:
        return UsageError(f"--host {host}: not an address of this machine ({reason})")
    return SearchError(
        f"--port {port}: cannot serve on {host}:{port} ({reason}); choose another port, or "
        "--port 0 for any free one"
    )


def artifact_folder(given: str | None, storage: str) -> Path | None:
    """The artifact folder, made if missing. One the user named that cannot be made is
    refused; the default one, beside a database this user cannot write, is left out (None):
    nothing could have been written there, so there is nothing to show."""
    folder = Path(given) if given else artifact_dir_for(storage)
    try:
        if not folder.is_dir():
            folder.mkdir(parents=True)
    except OSError as e:
        reason = (e.strerror or type(e).__name__).lower()
        if given:
            raise StorageError(
                f"--artifact-dir {folder}: cannot write {e.filename or folder} ({reason}); "
                "choose a folder you can write to"
            ) from None
        print(f"note: serving without artifacts: cannot make {folder} ({reason})", file=sys.stderr)
        return None
    return folder


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def serve() -> int:
        storage = open_storage(args.storage, must_exist=True)  # read-only if it must be
        try:  # bound first: a port or host that cannot be served leaves no folder behind
            server = bound_server(args.host, args.port)
        except OSError as e:
            raise bind_error(e, args.host, args.port) from None
        with server:
            serve_study(server, storage, artifact_folder(args.artifact_dir, args.storage))
            if args.host not in LOCAL_HOSTS:
                print(
                    f"warning: serving on {args.host}:{server.server_port}; optuna-dashboard "
                    "has no authentication, so anyone who can reach it can read and change "
                    "your studies",
                    file=sys.stderr,
                )
            host = f"[{args.host}]" if ":" in args.host else args.host
            print(f"optuna-dashboard on http://{host}:{server.server_port}/ (Ctrl-C stops it)")
            sys.stdout.flush()
            try:
                server.serve_forever()
            except KeyboardInterrupt:  # how a user stops a server: not a failure
                pass
        return 0

    return guarded(serve, args.debug)


if __name__ == "__main__":
    sys.exit(main())
