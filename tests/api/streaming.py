"""Reading event streams in tests: a Follower reads one stream of the Flask app on a thread;
``record`` and ``log_line`` write what a worker's steps would."""

from __future__ import annotations

import json
import queue
import threading

from flask.testing import FlaskClient
from sqlalchemy import update

from bigdata_paas.client.sse import parse
from bigdata_paas.models import Event, Instance, LogLine
from tests.api.support import API


def record(app, instance_id: str, step: str, status: str, message: str = "") -> None:
    """Move the instance to ``status`` and record the event, in one transaction (advance)."""
    with app.extensions["paas"].db.session() as session:
        session.execute(update(Instance).where(Instance.id == instance_id).values(status=status))
        session.add(Event(instance_id=instance_id, step=step, status=status, message=message))
        session.commit()


def log_line(app, instance_id: str, line: str, stream: str = "stdout") -> None:
    with app.extensions["paas"].db.session() as session:
        session.add(LogLine(instance_id=instance_id, command="start", stream=stream, line=line))
        session.commit()


class Follower:
    """One open stream, read on a thread: each chunk the server sends, in order."""

    END = object()

    def __init__(self, client: FlaskClient, path: str, headers: dict, **kwargs) -> None:
        self.response = client.get(API + path, headers=headers, buffered=False, **kwargs)
        self.chunks: queue.Queue = queue.Queue()
        self.raw: list[str] = []
        self.gone = False
        self.thread: threading.Thread | None = None
        if self.response.status_code == 200:
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()

    def _read(self) -> None:
        try:
            for chunk in self.response.response:
                if self.gone:
                    break
                self.chunks.put(chunk.decode())
        finally:
            # Closed here, between two chunks, as a WSGI server does when a write fails.
            self.response.close()
            self.chunks.put(self.END)

    def next(self, timeout: float = 30):
        """The next chunk (a message or a comment), or END."""
        chunk = self.chunks.get(timeout=timeout)
        if chunk is not self.END:
            self.raw.append(chunk)
        return chunk

    def next_event(self, timeout: float = 30) -> tuple[int, str, dict]:
        """(id, event name, data) of the next message, skipping comments; fails on the end."""
        while True:
            chunk = self.next(timeout)
            assert chunk is not self.END, f"the stream ended; it sent {self.raw}"
            for message in parse(chunk.split("\n")):
                if message.data:
                    return int(message.id), message.event, json.loads(message.data)

    def rest(self, timeout: float = 30) -> list[dict]:
        """The data of every message until the stream ends."""
        out = []
        while (chunk := self.next(timeout)) is not self.END:
            out += [json.loads(m.data) for m in parse(chunk.split("\n")) if m.data]
        return out

    def close(self) -> None:
        """Go away: the server notices at its next message or keep-alive."""
        self.gone = True
