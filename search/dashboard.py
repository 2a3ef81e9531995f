"""Start optuna-dashboard on a study database and its artifacts.

    python -m search.dashboard [--storage sqlite:///study_db/mnist.db] [--host 127.0.0.1]
                               [--port 8080]
It binds to this machine only unless told otherwise: the dashboard has no authentication.
"""

from __future__ import annotations

import sys
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore

from search.cli import Parser
from search.errors import SearchError
from search.publish import artifact_dir_for
from search.storage import DEFAULT_STORAGE, open_storage

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m search.dashboard", description=__doc__.splitlines()[0])
    p.add_argument("--storage", default=DEFAULT_STORAGE)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
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
    try:
        storage = open_storage(args.storage, must_exist=True)
    except SearchError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    artifacts = Path(args.artifact_dir) if args.artifact_dir else artifact_dir_for(args.storage)
    artifacts.mkdir(parents=True, exist_ok=True)
    from optuna_dashboard import run_server

    print(f"optuna-dashboard on http://{args.host}:{args.port}/ (Ctrl-C stops it)", flush=True)
    try:
        run_server(
            storage,
            host=args.host,
            port=args.port,
            artifact_store=FileSystemArtifactStore(str(artifacts)),
        )
    except KeyboardInterrupt:
        pass
    except OSError as e:
        print(f"error: cannot serve on {args.host}:{args.port}: {e.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
