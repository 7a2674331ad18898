"""Every request has an id: the client's ``X-Request-ID`` when well formed, else a new one.

It is answered in ``X-Request-ID``, put on each log line the request writes, and carried into
the Celery messages it publishes (bigdata_paas/logs.py), so an operator can follow a launch
from the HTTP request through every pipeline step. A malformed one (too short or long, or a
character outside letters, digits and ``+=/._:-``) is not an error: a tracing header never
fails a request. It is replaced, and the log says so.
"""

from __future__ import annotations

import contextlib
import logging

from flask import Flask, Response, g, request

from bigdata_paas import logs

HEADER = "X-Request-ID"
log = logging.getLogger(__name__)


def init_request_ids(app: Flask) -> None:
    # first of all hooks: the token check's refusals are logged with the id too
    app.before_request_funcs.setdefault(None, []).insert(0, _begin)
    app.after_request(_answer)
    app.teardown_request(_end)


def _begin() -> None:
    given = request.headers.get(HEADER)
    request_id, taken = logs.accepted_request_id(given)
    g.request_id = request_id
    g.request_log = logs.bound(request_id=request_id)
    g.request_log.__enter__()
    if given is not None and not taken:
        log.warning("%s refused (8 to 128 of A-Z a-z 0-9 +=/._:-); using %s", HEADER, request_id)


def _answer(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id:
        response.headers[HEADER] = request_id
    return response


def _end(_exc: BaseException | None = None) -> None:
    bound = g.pop("request_log", None)
    if bound is not None:
        with contextlib.suppress(ValueError):  # a response streamed from another context
            bound.__exit__(None, None, None)
