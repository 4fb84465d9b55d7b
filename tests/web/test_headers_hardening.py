"""Issue 16: cross-origin isolation headers on every page, and no Server product/version, also
behind gunicorn with the repository's gunicorn.conf.py."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ptmatch.clock import pause

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", ["/", "/hilfe", "/auth/login", "/healthz", "/gibt-es-nicht"])
def test_coop_corp_and_a_bare_server_header(client, path):
    response = client.get(path)
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert response.headers.getlist("Server") == ["ptmatch"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gunicorn_discloses_no_server_version(tmp_path, database_url, engine):
    port = _free_port()
    env = {
        **os.environ,
        "PTMATCH_INSTANCE_PATH": str(tmp_path),
        "PTMATCH_DATABASE_URL": database_url,
        "PTMATCH_SECRET_KEY": "Zq3v_8RkLw-2mN7pXc4TjH9sYb6FgD1aUe5oKi0",
    }
    for name in ("LD_PRELOAD", "FAKETIME", "FAKETIME_DONT_FAKE_MONOTONIC"):
        env.pop(name, None)  # gunicorn's arbiter sleeps: run it on the real clock
    argv = [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}", "wsgi:app"]
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                conn.request("GET", "/hilfe")
                response = conn.getresponse()
                response.read()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "gunicorn not up"
                pause(0.2)
            finally:
                conn.close()
        servers = [v for k, v in response.getheaders() if k.lower() == "server"]
        assert response.status == 200
        assert servers == ["ptmatch"]
        assert response.getheader("Cross-Origin-Opener-Policy") == "same-origin"
    finally:
        proc.terminate()
        for _ in range(100):  # proc.wait(timeout=...) sleeps, which faketime breaks
            if proc.poll() is not None:
                break
            pause(0.1)
        else:
            proc.kill()
        proc.wait()
