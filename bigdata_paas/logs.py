"""Log lines of every process (web, workers, beat, Flower, agents), configured here once.

``PAAS_LOG_FORMAT=json`` (the default) writes one JSON object a line, for a log collector:
``time``, ``level``, ``logger``, ``message``, and where known ``request_id``, ``instance_id``,
``task`` and ``step``. ``text`` writes the same as a readable line for a terminal.

The ids live in context variables: the web sets the request's (api/requests.py), the Celery
signals below carry it in the headers of every message published while it is set (the launch
chain, a worker's next step, the after-commit outbox) and set it again, with the task, its
step and its instance, around each task a worker runs. So one launch can be followed from its
HTTP request through every step by its ``request_id``.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import logging
import re
import sys
import uuid
from collections.abc import Iterator

from pythonjsonlogger.json import JsonFormatter

#: the fields a log line carries when they are known, in the order a text line shows them
FIELDS = ("request_id", "instance_id", "task", "step")
_CONTEXT: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(name, default=None) for name in FIELDS
}
#: the Celery message header that carries the request id
HEADER = "paas_request_id"
#: an X-Request-ID we take as it is: bounded, and nothing that could forge a log line
#: (what Heroku's router accepts, plus '.', '_' and ':')
REQUEST_ID = re.compile(r"[A-Za-z0-9+=/._:-]{8,128}")

_configured = False


def configure(level: str = "INFO", fmt: str = "json") -> None:
    """Send the root logger's lines to stderr in ``fmt``; the first call wins (a process
    configures once, whichever entry point it came through)."""
    global _configured
    root = logging.getLogger()
    # as logging.basicConfig: a root logger someone set up already (a test runner) is theirs
    if _configured or root.handlers:
        return
    _configured = True
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(fmt))
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level)


def make_formatter(fmt: str = "json") -> logging.Formatter:
    """The formatter of ``PAAS_LOG_FORMAT`` (also gunicorn's, config/gunicorn.py)."""
    if fmt == "text":
        return TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )


class ContextFilter(logging.Filter):
    """Put the ids of the current request or task on every record that passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _CONTEXT.items():
            value = var.get()
            if value is not None and not hasattr(record, name):
                setattr(record, name, value)
        return True


class AccessFilter(logging.Filter):
    """gunicorn's access lines: the response's X-Request-ID as the line's ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        atoms = record.args if isinstance(record.args, dict) else {}
        request_id = atoms.get("{x-request-id}o")
        if request_id and request_id != "-":
            record.request_id = request_id
        return True


class TextFormatter(logging.Formatter):
    """A readable line, the known ids after the message."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = (f"{n}={getattr(record, n)}" for n in FIELDS if getattr(record, n, None))
        known = [pair for pair in pairs if pair not in line]  # gunicorn's access line has one
        return f"{line} [{' '.join(known)}]" if known else line


def current(name: str) -> str | None:
    return _CONTEXT[name].get()


@contextlib.contextmanager
def bound(**fields: str | None) -> Iterator[None]:
    """Log with ``fields`` (of FIELDS) inside the block."""
    tokens = [(_CONTEXT[name], _CONTEXT[name].set(value)) for name, value in fields.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def accepted_request_id(given: str | None) -> tuple[str, bool]:
    """The request id to use for a request that sent ``given``: it when it is well formed,
    else a new one; and whether it was taken."""
    if given and REQUEST_ID.fullmatch(given):
        return given, True
    return uuid.uuid4().hex, False


def install_celery_signals() -> None:
    """Carry the request id in the messages this process publishes, and bind the ids around
    each task it runs (connected once; Celery keeps the receivers)."""
    from celery import signals

    signals.before_task_publish.connect(_add_request_id, weak=False, dispatch_uid="paas-logs-pub")
    signals.task_prerun.connect(_bind_task, weak=False, dispatch_uid="paas-logs-pre")
    signals.task_postrun.connect(_unbind_task, weak=False, dispatch_uid="paas-logs-post")


def _add_request_id(headers: dict | None = None, **_kwargs) -> None:
    request_id = _CONTEXT["request_id"].get()
    if request_id and headers is not None:
        headers.setdefault(HEADER, request_id)


_TASK_TOKENS: contextvars.ContextVar[list | None] = contextvars.ContextVar("tokens", default=None)


def _instance_id(task, args, kwargs) -> str | None:
    """The task's argument named ``instance_id``, if it has one (an agent's report names a
    host first: that is no instance)."""
    try:
        # the parameters Celery checks a call against (``Task.typing``): the task's own, not
        # those of what its retry wrapper or a step decorator wraps
        signature = inspect.signature(task.__header__)
        value = signature.bind_partial(*(args or ()), **(kwargs or {})).arguments.get("instance_id")
    except (AttributeError, TypeError, ValueError):
        return None
    return value if isinstance(value, str) else None


def _bind_task(task_id=None, task=None, args=None, kwargs=None, **_kwargs) -> None:
    name = getattr(task, "name", None) or ""
    request_id = getattr(getattr(task, "request", None), HEADER, None)
    values = {
        "request_id": request_id if request_id and REQUEST_ID.fullmatch(request_id) else None,
        "task": name,
        "step": name.partition(".")[2] or None,
        "instance_id": _instance_id(task, args, kwargs),
    }
    _TASK_TOKENS.set([(_CONTEXT[n], _CONTEXT[n].set(v)) for n, v in values.items()])


def _unbind_task(**_kwargs) -> None:
    for var, token in reversed(_TASK_TOKENS.get() or []):
        with contextlib.suppress(ValueError):
            var.reset(token)
    _TASK_TOKENS.set(None)
