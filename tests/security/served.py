"""The panel served by another process on a loopback port, on the test database: a second
host as far as sessions, tokens and rate limits are concerned (nothing in memory is shared
with the test's own app). `overrides` are passed to `create_app` as configuration."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

import requests

ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = """
import json, os, sys
from werkzeug.serving import make_server
shift = float(os.environ.get("SERVED_CLOCK_SHIFT") or 0)
if shift:  # a host whose clock is off by `shift` seconds (every clock read of the process)
    import time, time_machine
    time_machine.travel(time.time() + shift, tick=True).start()
from app import create_app
app = create_app("testing", **json.loads(os.environ["SERVED_CONFIG"]))
server = make_server("127.0.0.1", int(sys.argv[1]), app, threaded=True)
print("ready", flush=True)
server.serve_forever()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_url(db: int = 13) -> str | None:
    """The machine's Redis (a database number of these tests' own), if it answers."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            if conn.recv(16).startswith(b"+PONG"):
                return f"redis://127.0.0.1:6379/{db}"
    except OSError:
        pass
    return None


class Served:
    def __init__(self, database_url: str, clock_shift: float = 0, **overrides):
        self.config = {"SQLALCHEMY_DATABASE_URI": database_url, **overrides}
        self.clock_shift = clock_shift
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = ""

    def __enter__(self) -> Self:
        env = {**os.environ, "SERVED_CONFIG": json.dumps(self.config),
               "SERVED_CLOCK_SHIFT": str(self.clock_shift)}
        env.pop("TEST_DATABASE_URL", None)
        self.log_file = tempfile.NamedTemporaryFile("w+", prefix="served-", suffix=".log")
        self.proc = subprocess.Popen([sys.executable, "-c", _SCRIPT, str(self.port)], cwd=ROOT,
                                     env=env, stdout=self.log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.proc.poll() is None:
            if "ready" in Path(self.log_file.name).read_text():
                return self
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"the second process did not start:\n{self.log}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log = Path(self.log_file.name).read_text()
        self.log_file.close()

    def api_login(self, username, password) -> requests.Response:
        return requests.post(f"{self.url}/api/v1/security/login", timeout=30, json={
            "username": username, "password": password, "provider": "db"})
