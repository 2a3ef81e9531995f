"""optuna-dashboard as a server of our own, so that it can bind a port the system chooses.

optuna-dashboard's ``wsgi`` app served by ``wsgiref``, as its own ``run_server`` does, except
that the socket is bound before anything is printed or made: with port 0 the system picks a
free port and the caller learns it from ``server_port``, with no race between choosing and
binding, and a port or host that cannot be served leaves nothing behind.
"""

from __future__ import annotations

import socket
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from optuna.artifacts import FileSystemArtifactStore
from optuna.storages import BaseStorage

from search import signals

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        pass  # one line per request would drown the URL the user needs


class _Server(WSGIServer):
    def service_actions(self) -> None:
        """Between requests (at least every half second): a stop ends ``serve_forever``."""
        signals.stop_point()

    def process_request(self, request: object, client_address: object) -> None:
        """One request with every stop held back until it is answered: wsgiref catches each
        exception of a request (a second Ctrl-C's among them), prints it and serves on."""
        with signals.deferred():
            super().process_request(request, client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


def bound_server(host: str, port: int) -> WSGIServer:
    """A server bound to ``host:port`` with no app yet (``serve_study`` gives it one); an
    ``OSError`` (``socket.gaierror`` for an unknown host) if it cannot bind."""
    server_class = _Server6 if ":" in host else _Server
    return make_server(host, port, None, server_class=server_class, handler_class=_QuietHandler)


def serve_study(server: WSGIServer, storage: BaseStorage, artifact_dir: Path | None) -> None:
    """Give ``server`` the dashboard of ``storage``; with no ``artifact_dir`` the dashboard
    shows no artifacts and offers no uploads."""
    from optuna_dashboard import wsgi  # its import takes a moment: only when serving

    store = FileSystemArtifactStore(str(artifact_dir)) if artifact_dir is not None else None
    server.set_app(wsgi(storage, artifact_store=store))
