"""`editkit serve` on the command line: the missing extra, the --host warning, a taken port."""
from __future__ import annotations

import socket

import pytest

from editkit import web
from editkit.cli import main
from editkit.errors import UsageError


def test_serve_without_the_web_extra_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setattr(web, "missing_modules", lambda: ["fastapi", "uvicorn"])
    assert main(["serve"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "web extra" in err and "pip install -e '.[web]'" in err


def test_loopback_detection():
    assert all(web.is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"))
    assert not any(web.is_loopback(h) for h in ("0.0.0.0", "192.168.1.4", "::", "example.org"))


class Stop(Exception):
    pass


def _stop():
    raise Stop()


def test_other_hosts_get_a_warning_and_loopback_none():
    said: list[str] = []
    with pytest.raises(Stop):  # the warning comes before any model is loaded
        web.serve(_stop, host="0.0.0.0", port=0, echo=said.append)
    assert len(said) == 1 and said[0].startswith("editkit: warning: serving on 0.0.0.0") and "no login" in said[0]
    said.clear()
    with pytest.raises(Stop):
        web.serve(_stop, host="127.0.0.1", port=0, echo=said.append)
    assert said == []


def test_a_taken_port_is_a_one_line_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        with pytest.raises(UsageError, match=f"cannot listen on 127.0.0.1:{port}.*choose another --port"):
            web.serve(_stop, host="127.0.0.1", port=port, echo=lambda m: None)
