"""A small render zygote: a clean process that forks one render child per template render.

Forking the web or worker process for every render copied its page tables (and, while the
child lived, made every page the parent wrote a copy) and stopped its other threads for the
fork; that cost most of a launch's render. Instead each process that renders starts, once and
lazily, a zygote: a fresh interpreter (``python -I``, an environment holding no variable but
PATH, no descriptor but its socket) that imports only the renderer and never runs template
code. For each render it forks a child that runs ``rendering.child.child_main`` exactly as the
direct fork did (rlimits on top of the zygote's small address space, every descriptor but
the result pipe closed, compile, render, one result, ``os._exit``). A child is never reused,
so nothing a template does can reach a later render; and nothing of the web process (its
secrets, its database and broker connections) is in the zygote to be reached at all.

Per render the parent sends, on the zygote's SOCK_SEQPACKET socket, the pickled limits and
three descriptors: the write end of the result pipe (read by the parent as before), the read
end of a pipe carrying the pickled render arguments (read by the child only), and a control
socket. On the control socket the zygote answers with the child's wait status when it has
reaped it; a byte from the parent, or the parent closing it, makes the zygote SIGKILL the
child (a deadline or an oversized output, enforced by the parent). The zygote trusts only its
parent (pickles come from it); the parent never unpickles anything.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import selectors
import signal
import socket
import struct
import sys
from typing import Any

STATUS = struct.Struct(">i")
#: the request message: pickled RenderLimits (small), and the three descriptors
MAX_REQUEST = 4096
#: the first message of a started zygote: its imports are done, renders do not wait for them
READY = b"ready"
#: pickled render arguments are preceded by their length
LENGTH = struct.Struct(">Q")


def _read_exactly(fd: int, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        data = os.read(fd, min(size - len(chunks), 1 << 20))
        if not data:
            raise EOFError("render arguments cut short")
        chunks += data
    return bytes(chunks)


def _child(
    wfd: int, args_fd: int, limits: Any, close: list[int]
) -> None:  # pragma: no cover - runs in the forked child
    """In the forked render child: read the arguments, then render as child_main does."""
    status = 70
    try:
        signal.set_wakeup_fd(-1)
        for fd in close:
            with contextlib.suppress(OSError):
                os.close(fd)
        size = LENGTH.unpack(_read_exactly(args_fd, LENGTH.size))[0]
        source, generated, code_limit, context, fmt = pickle.loads(_read_exactly(args_fd, size))
        os.close(args_fd)
        from bigdata_paas.rendering import codecache
        from bigdata_paas.rendering.child import child_main

        env, _fingerprint = codecache.environment(limits)
        child_main(wfd, env, source, generated, code_limit, context, fmt)
    finally:
        os._exit(status)


class _Zygote:
    """The zygote's loop: fork on request, kill on request, report each child's status."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.selector = selectors.DefaultSelector()
        self.children: dict[int, socket.socket] = {}  # pid -> control socket
        self.controls: dict[int, int] = {}  # control fd -> pid
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.selector.register(sock, selectors.EVENT_READ, "request")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "child")

    def run(self) -> None:
        while True:
            for key, _events in self.selector.select():
                if key.data == "request":
                    if not self.request():
                        self.shutdown()
                        return
                elif key.data == "child":
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self.wake_r, 512):
                            pass
                    self.reap()
                else:
                    self.control(key.fileobj)  # type: ignore[arg-type]

    def request(self) -> bool:
        """Fork a render child for one request; False when the parent has gone."""
        try:
            message, fds, _flags, _addr = socket.recv_fds(self.sock, MAX_REQUEST, 3)
        except OSError:
            return False
        if not message and not fds:
            return False
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            return True
        wfd, args_fd, control_fd = fds
        control = socket.socket(fileno=control_fd)
        try:
            from bigdata_paas.rendering import codecache

            limits = pickle.loads(message)
            codecache.environment(limits)  # built here once, inherited by every child
            pid = os.fork()
        except Exception:
            # no child: the parent sees the result pipe close and no status
            os.close(wfd)
            os.close(args_fd)
            control.close()
            return True
        if pid == 0:  # pragma: no cover - the child
            keep = {wfd, args_fd}
            close = [self.sock.fileno(), self.wake_r, self.wake_w, control_fd]
            close += [s.fileno() for s in self.children.values()]
            _child(wfd, args_fd, limits, [fd for fd in close if fd not in keep])
        os.close(wfd)
        os.close(args_fd)
        self.children[pid] = control
        self.controls[control.fileno()] = pid
        self.selector.register(control, selectors.EVENT_READ, "control")
        return True

    def control(self, control: socket.socket) -> None:
        """A byte (or the parent closing the socket) asks for the child to be killed."""
        pid = self.controls.get(control.fileno())
        try:
            data = control.recv(16)
        except OSError:
            data = b""
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if not data:
            self.selector.unregister(control)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            control = self.children.pop(pid, None)
            if control is None:
                continue
            self.controls.pop(control.fileno(), None)
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(control)
            with contextlib.suppress(OSError):
                control.sendall(STATUS.pack(status))
            control.close()

    def shutdown(self) -> None:
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in list(self.children):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def main(fd: int) -> None:
    """Serve render requests on the inherited socket ``fd`` until the parent closes it."""
    sock = socket.socket(fileno=fd)
    # Imported before any fork: a child never imports (nor builds the default environment).
    from bigdata_paas.rendering import child, codecache  # noqa: F401
    from bigdata_paas.rendering.sandbox import DEFAULT_LIMITS

    codecache.environment(DEFAULT_LIMITS)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGQUIT"):
        # the web server's signals are for the web server: the zygote ends with its socket
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    zygote = _Zygote(sock)
    sock.send(READY)
    zygote.run()


if __name__ == "__main__":  # pragma: no cover - started by rendering.supervisor
    main(int(sys.argv[1]))
