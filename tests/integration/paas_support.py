"""A live stack for the paas command's tests: gunicorn as the Procfile starts it, the command
run as a user runs it, and streams read raw from their sockets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

from bigdata_paas.client.sse import parse
from tests.conftest import ADMIN_TOKEN, ROOT, bearer, wait_until

BIN = Path(sys.executable).parent
API = "/bigdata/api/v1"


@dataclass
class Live:
    root: Path
    port: int
    env: dict[str, str]
    app: object
    web: subprocess.Popen
    web_log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def paas(
        self, *args: str, token: str | None = ADMIN_TOKEN, timeout: float = 120, **env: str
    ) -> subprocess.CompletedProcess:
        """Run ``paas ARGS`` as a user does (off a terminal); its result."""
        return subprocess.run(
            self.command(*args),
            env=self.client_env(token, **env),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "bigdata_paas.client", *args]

    def client_env(self, token: str | None, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAAS_")}
        env.update(
            PYTHONPATH=str(ROOT),
            PAAS_URL=self.url,
            XDG_CONFIG_HOME=str(self.root / "config"),
            COLUMNS="200",
        )
        if token:
            env["PAAS_TOKEN"] = token
        env.update(extra)
        return env

    def get(self, path: str, token: str = ADMIN_TOKEN) -> dict:
        response = requests.get(self.url + API + path, headers=bearer(token), timeout=30)
        assert response.status_code == 200, response.text
        return response.json()


def stop_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def start_gunicorn(env: dict[str, str], port: int, log: Path, *args: str) -> subprocess.Popen:
    """gunicorn as the Procfile's web line starts it; returns once /health answers."""
    with log.open("ab") as out:
        web = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "config/gunicorn.py", *args, "wsgi:app"],
            cwd=ROOT,
            env={**os.environ, **env, "PAAS_PORT": str(port), "PAAS_HOST": "127.0.0.1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def healthy() -> bool:
        assert web.poll() is None, log.read_text()[-3000:]
        try:
            return requests.get(f"http://127.0.0.1:{port}{API}/health", timeout=5).ok
        except requests.RequestException:
            return False

    wait_until(healthy, "gunicorn to answer /health", interval=0.2)
    return web


def write_service(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


class RawStream:
    """One stream on its own socket: the request, then the answer as it comes."""

    def __init__(self, port: int, path: str, token: str, last_id: int | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        headers = f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n"
        if last_id is not None:
            headers += f"Last-Event-ID: {last_id}\r\n"
        self.sock.sendall(f"GET {API}{path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n".encode())
        self.raw = b""
        self.ended = False

    @property
    def text(self) -> str:
        return self.raw.decode(errors="replace")

    def read_until(self, predicate) -> str:
        """Read until ``predicate(text so far)`` or the end of the connection."""
        while not predicate(self.text):
            chunk = self.sock.recv(65536)
            if not chunk:
                self.ended = True
                break
            self.raw += chunk
        return self.text

    def body(self) -> str:
        """The body so far, its chunked framing undone (whole chunks only)."""
        _head, _, rest = self.raw.partition(b"\r\n\r\n")
        body = b""
        while b"\r\n" in rest:
            size_line, _, after = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0 or len(after) < size + 2:
                break
            body, rest = body + after[:size], after[size + 2 :]
        return body.decode()

    def events(self) -> list[dict]:
        """The data of every message received so far."""
        return [json.loads(m.data) for m in parse(self.body().split("\n")) if m.data]

    def close(self) -> None:
        self.sock.close()
