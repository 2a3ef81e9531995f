"""optuna-dashboard as a server of our own, so that it can bind a port the system chooses.

optuna-dashboard's ``wsgi`` app served by ``wsgiref``, as its own ``run_server`` does, except
that the socket is bound before anything is printed: with port 0 the system picks a free port
and the caller learns it from ``server_port``, with no race between choosing and binding.
"""

from __future__ import annotations

import socket
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from optuna.artifacts import FileSystemArtifactStore
from optuna.storages import BaseStorage

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        pass  # one line per request would drown the URL the user needs


class _Server6(WSGIServer):
    address_family = socket.AF_INET6


def dashboard_server(storage: BaseStorage, host: str, port: int, artifact_dir: Path) -> WSGIServer:
    """A bound, not yet serving, dashboard; ``serve_forever()`` runs it."""
    from optuna_dashboard import wsgi  # its import takes a moment: only when serving

    artifact_dir.mkdir(parents=True, exist_ok=True)
    app = wsgi(storage, artifact_store=FileSystemArtifactStore(str(artifact_dir)))
    server_class = _Server6 if ":" in host else WSGIServer
    return make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)
