"""Server-Sent Events: an instance's events and logs as they happen, and every event a caller
may see. The feeds (what is read, from where, until when) are ``operations.feeds``."""

from __future__ import annotations

import json

from flask import Response, current_app

from bigdata_paas.api import schemas
from bigdata_paas.api.common import Blueprint, caller, errors, runtime
from bigdata_paas.operations import feeds
from bigdata_paas.operations import instances as ops

blp = Blueprint("streams", __name__, description="Follow events and logs as they happen (SSE)")

#: how long a browser's EventSource waits before it reconnects (milliseconds)
RETRY_MS = 2000


@blp.record_once
def _make_hub(state) -> None:
    state.app.extensions["feeds"] = feeds.hub_for(state.app.extensions["paas"])


def hub() -> feeds.Hub:
    return current_app.extensions["feeds"]


def pace() -> feeds.Pace:
    config = runtime().config
    return feeds.Pace(keepalive=config.STREAM_KEEPALIVE, max_age=config.STREAM_MAX_AGE)


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
    doc = errors(400, 401, 404, 503)
    doc["responses"][200] = {
        "description": description,
        "content": {"text/event-stream": {"schema": SSE_MESSAGE}},
    }
    if finished:
        doc["responses"][204] = {
            "description": "nothing more will come: the instance is terminal and the caller "
            "saw everything up to it (an EventSource stops reconnecting)"
        }
    return doc


def resume_from(headers: dict, query: dict) -> int | None:
    """Where to resume: Last-Event-ID (an EventSource sends it when it reconnects), else
    ?after= (for clients that cannot set headers); None for neither."""
    found = headers.get("last_event_id")
    return found if found is not None else query.get("after")


@blp.route("/instances/<instance_id>/events/stream", methods=["GET"])
@blp.doc(
    **sse_responses(
        "each event as `id:` (its id), `event:` (its status), `data:` (the event JSON, as in "
        "/events); a comment every PAAS_STREAM_KEEPALIVE seconds; ends after running, "
        "failed or destroyed (with follow, after failed or destroyed)"
    ),
)
@blp.arguments(schemas.StreamHeaders, location="headers")
@blp.arguments(schemas.InstanceStreamQuery, location="query")
def instance_events_stream(headers: dict, query: dict, instance_id: str):
    """Follow an instance's events as they happen (Server-Sent Events)."""
    return instance_stream(instance_id, headers, query, logs=False)


@blp.route("/instances/<instance_id>/logs/stream", methods=["GET"])
@blp.doc(
    **sse_responses(
        "each orquestrator output line as `id:` (its id), `event: log`, `data:` (the line "
        "JSON, as in /logs); ends as the events stream does"
    ),
)
@blp.arguments(schemas.StreamHeaders, location="headers")
@blp.arguments(schemas.InstanceStreamQuery, location="query")
def instance_logs_stream(headers: dict, query: dict, instance_id: str):
    """Follow an instance's orquestrator output as it is written (Server-Sent Events)."""
    return instance_stream(instance_id, headers, query, logs=True)


def instance_stream(instance_id: str, headers: dict, query: dict, *, logs: bool) -> Response:
    ops.check_visible(runtime(), caller(), instance_id)  # someone else's is a 404
    stream = feeds.open_instance_stream(
        hub(),
        instance_id,
        logs=logs,
        after=resume_from(headers, query),
        follow=query["follow"],
        pace=pace(),
    )
    return Response(status=204) if stream is None else event_stream(stream)


@blp.route("/events/stream", methods=["GET"])
@blp.doc(
    **sse_responses(
        "the events of every instance you may see (admins: all), each naming its "
        "`instance_id`; from now on, or after the given id (`?after=0`: from the start)",
        finished=False,
    ),
)
@blp.arguments(schemas.StreamHeaders, location="headers")
@blp.arguments(schemas.StreamQuery, location="query")
def all_events_stream(headers: dict, query: dict):
    """Follow the events of all your instances (admins: everyone's) as they happen."""
    user = caller()
    stream = feeds.open_global_stream(
        hub(),
        user_id=None if user.is_admin else user.id,
        after=resume_from(headers, query),
        pace=pace(),
    )
    return event_stream(stream)
