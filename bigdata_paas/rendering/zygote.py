"""A small render zygote: a clean process that forks the renderers, one per template in use.

Forking the web or worker process for every render copied its page tables (and, while the
child lived, made every page the parent wrote a copy) and stopped its other threads for the
fork; that cost most of a launch's render. Instead each process that renders starts, once and
lazily, a zygote: a fresh interpreter (``python -I``, an environment holding no variable but
PATH, no descriptor but its socket) that imports only the renderer and never runs template
code. On request it forks a renderer that runs ``rendering.child.serve`` (rlimits on top of
the zygote's small address space, every descriptor but its two pipes closed, then renders of
one template, each under its own limits: ``rendering.child``). Nothing of the web process
(its secrets, its database and broker connections) is in the zygote to be reached at all,
and a renderer only ever renders one template (``rendering.supervisor`` says when it is
thrown away).

Per renderer the parent sends, on the zygote's SOCK_SEQPACKET socket, the pickled limits and
three descriptors: the write end of the result pipe and the read end of the request pipe
(both used by the renderer only: the parent talks to its renderers directly, the zygote is
not involved in a render) and a control socket. On the control socket the zygote answers with
the renderer's wait status when it has reaped it; a byte from the parent, or the parent
closing it, makes the zygote SIGKILL the renderer (a deadline or an oversized output enforced
by the parent, or a renderer it throws away). A renderer dies with the zygote (the parent-death
signal), and the zygote kills its renderers and leaves when the parent closes its socket. The
zygote trusts only its parent (pickles come from it); the parent never unpickles anything.
"""

from __future__ import annotations

import contextlib
import functools
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
_PR_SET_PDEATHSIG = 1
#: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, prepared by ``main`` before any fork (Linux only)
_KILL_ME_WITH_MY_PARENT: Any = None


def _die_with_the_zygote(zygote: int) -> None:  # pragma: no cover - in the forked renderer
    """Have the kernel SIGKILL this renderer when the zygote dies (Linux; elsewhere a
    renderer ends when the parent closes its request pipe or after ``child.IDLE_EXIT``)."""
    if _KILL_ME_WITH_MY_PARENT is not None:
        _KILL_ME_WITH_MY_PARENT()
    if os.getppid() != zygote:  # the zygote died before the call
        os._exit(70)


def _renderer(
    wfd: int, requests_fd: int, limits: Any, close: list[int], zygote: int
) -> None:  # pragma: no cover - runs in the forked renderer
    """In the forked renderer: drop the zygote's descriptors, then serve renders."""
    status = 70
    try:
        signal.set_wakeup_fd(-1)
        _die_with_the_zygote(zygote)
        for fd in close:
            with contextlib.suppress(OSError):
                os.close(fd)
        from bigdata_paas.rendering import codecache
        from bigdata_paas.rendering.child import serve

        env, _fingerprint = codecache.environment(limits)
        serve(wfd, requests_fd, env)
    finally:
        os._exit(status)


class _Zygote:
    """The zygote's loop: fork on request, kill on request, report each renderer's status."""

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
        """Fork a renderer for one request; False when the parent has gone."""
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
        wfd, requests_fd, control_fd = fds
        control = socket.socket(fileno=control_fd)
        try:
            from bigdata_paas.rendering import codecache

            limits = pickle.loads(message)
            codecache.environment(limits)  # built here once, inherited by every renderer
            zygote = os.getpid()
            pid = os.fork()
        except Exception:
            # no renderer: the parent sees the result pipe close and no status
            os.close(wfd)
            os.close(requests_fd)
            control.close()
            return True
        if pid == 0:  # pragma: no cover - the renderer
            keep = {wfd, requests_fd}
            close = [self.sock.fileno(), self.wake_r, self.wake_w, control_fd]
            close += [s.fileno() for s in self.children.values()]
            _renderer(wfd, requests_fd, limits, [fd for fd in close if fd not in keep], zygote)
        os.close(wfd)
        os.close(requests_fd)
        self.children[pid] = control
        self.controls[control.fileno()] = pid
        self.selector.register(control, selectors.EVENT_READ, "control")
        return True

    def control(self, control: socket.socket) -> None:
        """A byte (or the parent closing the socket) asks for the renderer to be killed."""
        if control.fileno() < 0:
            return  # its renderer was reaped (and the socket closed) earlier in this round
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
    global _KILL_ME_WITH_MY_PARENT
    sock = socket.socket(fileno=fd)
    # Imported before any fork: a renderer never imports (nor builds the default environment).
    from bigdata_paas.rendering import child, codecache  # noqa: F401
    from bigdata_paas.rendering.sandbox import DEFAULT_LIMITS

    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            prctl = ctypes.CDLL(None, use_errno=True).prctl
            _KILL_ME_WITH_MY_PARENT = functools.partial(
                prctl, _PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL)
            )

    codecache.environment(DEFAULT_LIMITS)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGQUIT"):
        # the web server's signals are for the web server: the zygote ends with its socket
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    zygote = _Zygote(sock)
    sock.send(READY)
    zygote.run()


if __name__ == "__main__":  # pragma: no cover - started by rendering.supervisor
    main(int(sys.argv[1]))
