"""``editkit serve``: a local web editor (one static page + a small FastAPI app), an optional extra.

    pip install -e '.[web]'
    editkit serve                     # http://127.0.0.1:7860/

:func:`serve` loads the models once, binds the socket, prints the address and serves until Ctrl-C;
:func:`editkit.web.app.create_app` builds the app around an :class:`editkit.web.service.EditorService`
(for tests and embedding).
"""
from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from typing import Any, Callable

from ..errors import UsageError

#: The command that installs what ``editkit serve`` needs.
INSTALL_HINT = "pip install 'editkit[web]'  (from a clone: pip install -e '.[web]')"
WEB_MODULES = ("fastapi", "uvicorn")


def missing_modules() -> list[str]:
    """The web extra's modules that cannot be imported here."""
    import importlib.util

    return [m for m in WEB_MODULES if importlib.util.find_spec(m) is None]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port); a clear error if it is taken."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host!r}: cannot resolve ({exc.strerror})") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = host if host not in ("0.0.0.0", "::") else socket.gethostname()
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def _server_class():
    import contextlib
    import signal

    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, but Ctrl-C/SIGTERM only stop it (uvicorn re-raises them, skipping our clean-up)."""

        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            old = {s: signal.signal(s, self.handle_exit) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for s, h in old.items():
                    signal.signal(s, h)

    return Server


def serve(editor_factory: Callable[[], Any], host: str = "127.0.0.1", port: int = 7860,
          max_upload: int | None = None, session_ttl: float = 1800.0, model_name: str | None = None,
          cli_options: list[str] | None = None, echo: Callable[[str], None] = print) -> None:
    """Load the models (once, for every request of this process), then serve until interrupted."""
    from .app import create_app
    from .service import DEFAULT_MAX_UPLOAD, EditorService
    from .state import Sessions

    if not is_loopback(host):
        echo(f"editkit: warning: serving on {host}: anyone who can reach this machine on port {port} can use the "
             "editor and upload photos (there is no login); use the default --host 127.0.0.1 to keep it local")
    sock = bind(host, port)  # before loading models: a taken port fails at once
    service = None
    try:
        editor = editor_factory()
        service = EditorService(editor, Sessions(ttl=session_ttl), max_upload=max_upload or DEFAULT_MAX_UPLOAD,
                                model_name=model_name, cli_options=cli_options)
        app = create_app(service, host=host if is_loopback(host) else "0.0.0.0")
        import uvicorn

        config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2)
        server = _server_class()(config)
        echo(f"editkit serve: {url_of(sock, host)}  (model: {model_name or 'bundled'}; Ctrl-C stops)")
        sys.stdout.flush()
        threading.Thread(target=service.warm_up, daemon=True, name="editkit-warm-up").start()
        server.run(sockets=[sock])
        echo("editkit serve: stopped (every session's photos and results deleted)")
    finally:
        sock.close()
        if service is not None:
            service.sessions.close()  # nothing of any session outlives the server
