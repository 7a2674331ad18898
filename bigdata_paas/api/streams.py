"""Server-Sent Events: an instance's events and logs as they happen, and every event a caller
may see. The feeds (what is read, from where, until when) are ``operations.feeds``."""

from __future__ import annotations

import json
import math

from flask import Response, current_app, g, request
from flask_smorest import Blueprint

from bigdata_paas.api.common import responses, runtime
from bigdata_paas.errors import ValidationError
from bigdata_paas.operations import feeds
from bigdata_paas.operations.instances import get_instance

blp = Blueprint("streams", __name__, description="Follow events and logs as they happen (SSE)")

#: how long a browser's EventSource waits before it reconnects (milliseconds)
RETRY_MS = 2000
#: the longest long-poll (GET /instances/{id}/events?wait=)
MAX_WAIT = 60


@blp.record_once
def _make_hub(state) -> None:
    rt = state.app.extensions["paas"]
    state.app.extensions["feeds"] = feeds.Hub(
        rt.db,
        interval=rt.config.STREAM_POLL_INTERVAL,
        gap_timeout=rt.config.STREAM_GAP_TIMEOUT,
        limit=rt.config.stream_limit,
    )


def hub() -> feeds.Hub:
    return current_app.extensions["feeds"]


def pace() -> feeds.Pace:
    config = runtime().config
    return feeds.Pace(keepalive=config.STREAM_KEEPALIVE, max_age=config.STREAM_MAX_AGE)


def _id(value: str, field: str) -> int:
    # ASCII digits only, and below 2**63 (SQLite integers are 64-bit)
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        raise ValidationError("must be an event id (an integer >= 0)", field=field)
    return int(value)


def cursor_arg() -> int | None:
    """Where to resume: the ``Last-Event-ID`` header (a reconnecting EventSource sends it),
    else ``?after=``; None when neither is given."""
    header = request.headers.get("Last-Event-ID", "").strip()
    if header:
        return _id(header, "Last-Event-ID")
    after = request.args.get("after")
    return None if after is None else _id(after, "after")


def flag_arg(name: str) -> bool:
    value = request.args.get(name, "false").strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off", ""):
        return False
    raise ValidationError("must be true or false", field=name)


def wait_arg() -> float:
    """``?wait=<seconds>`` of a long-poll: 0 (the default) to 60."""
    raw = request.args.get("wait")
    if raw is None:
        return 0.0
    try:
        value = float(raw) if raw.isascii() and len(raw) <= 20 else math.nan
    except ValueError:
        value = math.nan
    if not 0 <= value <= MAX_WAIT:  # NaN fails too
        raise ValidationError(f"must be a number of seconds from 0 to {MAX_WAIT}", field="wait")
    return value


def sse(message: feeds.Message) -> str:
    """One message in the text/event-stream format; the JSON is one line (json.dumps escapes
    every line break, and ensure_ascii the Unicode ones)."""
    if message.comment is not None:
        return f": {message.comment}\n\n"
    if message.data is None:
        return f"id: {message.id}\n\n"  # sets the client's last event id, dispatches nothing
    data = json.dumps(message.data, separators=(",", ":"))
    return f"id: {message.id}\nevent: {message.kind}\ndata: {data}\n\n"


def event_stream(stream: feeds.Stream) -> Response:
    def body():
        # The first bytes go out at once: a client sees the answer began, even if quiet.
        yield f"retry: {RETRY_MS}\n\n"
        for message in stream:
            yield sse(message)

    chunks = body()

    class Body:
        """The response body; the WSGI server closes it when done or when the client left."""

        def __iter__(self):
            return chunks

        def close(self) -> None:
            try:
                chunks.close()
            except ValueError:
                pass  # still running on another thread; closing the stream ends it
            finally:
                stream.close()

    return Response(
        Body(),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


SSE_PARAMETERS = [
    {
        "name": "after",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 0, "maximum": 10**18 - 1},
        "description": "resume after this id (what Last-Event-ID says, for clients that "
        "cannot send it)",
    },
    {
        "name": "Last-Event-ID",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
        "description": "resume after this id (an EventSource sends it when it reconnects); "
        "wins over ?after=",
    },
]
LONG_POLL_PARAMETERS = [
    {
        "name": "after",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 0, "maximum": 10**18 - 1},
        "description": "only events after this id (the `last` of the previous answer)",
    },
    {
        "name": "wait",
        "in": "query",
        "required": False,
        "schema": {"type": "number", "minimum": 0, "maximum": MAX_WAIT},
        "description": "long-poll: when there is no newer event, answer as soon as one "
        "comes, or with none after this many seconds (at most 60)",
    },
]
FOLLOW = {
    "name": "follow",
    "in": "query",
    "required": False,
    "schema": {"type": "boolean", "default": False},
    "description": "keep following past running (only failed and destroyed end the stream)",
}


#: one message of a stream, as an SSE client sees it (the data is one line of JSON)
SSE_MESSAGE = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"type": "string"},
        "data": {"type": "string", "description": "the item's JSON"},
        "retry": {"type": "integer"},
    },
    "required": ["id", "event", "data"],
}


def sse_responses(description: str, *, finished: bool = True) -> dict:
    doc = responses(errors=(400, 401, 404, 503))
    doc["responses"]["200"] = {
        "description": description,
        "content": {"text/event-stream": {"schema": SSE_MESSAGE}},
    }
    if finished:
        doc["responses"]["204"] = {
            "description": "nothing more will come: the instance is terminal and the caller "
            "saw everything up to it (an EventSource stops reconnecting)"
        }
    return doc


@blp.route("/instances/<instance_id>/events/stream", methods=["GET"])
@blp.doc(
    parameters=[*SSE_PARAMETERS, FOLLOW],
    **sse_responses(
        "each event as `id:` (its id), `event:` (its status), `data:` (the event JSON, as in "
        "/events); a comment every PAAS_STREAM_KEEPALIVE seconds; ends after running, "
        "failed or destroyed (with follow, after failed or destroyed)"
    ),
)
def instance_events_stream(instance_id: str):
    """Follow an instance's events as they happen (Server-Sent Events)."""
    after, follow = cursor_arg(), flag_arg("follow")
    with runtime().db.session() as session:
        get_instance(session, g.user, instance_id)  # someone else's is a 404
    stream = feeds.open_instance_stream(
        hub(), instance_id, logs=False, after=after, follow=follow, pace=pace()
    )
    return ("", 204) if stream is None else event_stream(stream)


@blp.route("/instances/<instance_id>/logs/stream", methods=["GET"])
@blp.doc(
    parameters=[*SSE_PARAMETERS, FOLLOW],
    **sse_responses(
        "each orquestrator output line as `id:` (its id), `event: log`, `data:` (the line "
        "JSON, as in /logs); ends as the events stream does"
    ),
)
def instance_logs_stream(instance_id: str):
    """Follow an instance's orquestrator output as it is written (Server-Sent Events)."""
    after, follow = cursor_arg(), flag_arg("follow")
    with runtime().db.session() as session:
        get_instance(session, g.user, instance_id)
    stream = feeds.open_instance_stream(
        hub(), instance_id, logs=True, after=after, follow=follow, pace=pace()
    )
    return ("", 204) if stream is None else event_stream(stream)


@blp.route("/events/stream", methods=["GET"])
@blp.doc(
    parameters=SSE_PARAMETERS,
    **sse_responses(
        "the events of every instance you may see (admins: all), each naming its "
        "`instance_id`; from now on, or after the given id (`?after=0`: from the start)",
        finished=False,
    ),
)
def all_events_stream():
    """Follow the events of all your instances (admins: everyone's) as they happen."""
    user = g.user
    stream = feeds.open_global_stream(
        hub(), user_id=None if user.is_admin else user.id, after=cursor_arg(), pace=pace()
    )
    return event_stream(stream)
