"""`dlp serve` from the command line: what cannot be served is one line and exit 2, before any server."""

from __future__ import annotations

import socket

import pytest

from dlpractice.errors import DlpError
from dlpractice.serve.app import bind


@pytest.fixture
def taken_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock.getsockname()[1]
    sock.close()


def test_a_port_in_use_is_one_line(taken_port):
    with pytest.raises(DlpError, match=f"port {taken_port} on 127.0.0.1 is in use: pick another with --port"):
        bind("127.0.0.1", taken_port)
    with pytest.raises(DlpError, match="cannot serve on host"):
        bind("no-such-host.invalid", 8000)
    free = bind("127.0.0.1", 0)  # the default host is the loopback only
    assert free.getsockname()[0] == "127.0.0.1"
    free.close()


@pytest.mark.slow
def test_dlp_serve_says_what_is_wrong_in_one_line(dlp, taken_port, tmp_path):
    missing = dlp("serve", "l2-nothing-here")
    assert missing.returncode == 2 and "no run 'l2-nothing-here'" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    busy = dlp("serve", "l2-nothing-here", "--port", str(taken_port))
    assert busy.returncode == 2 and f"port {taken_port} on 127.0.0.1 is in use" in busy.stderr
