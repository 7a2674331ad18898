"""The REST API from Python: one method per endpoint, errors as exceptions, streams followed.

    from bigdata_paas.client import Client

    with Client("http://127.0.0.1:5000", token) as paas:
        instance = paas.launch("gluster", "3.7.11", {"size": 2})
        for event in paas.follow(instance["id"]):
            print(event["status"], event["message"])
        running = paas.wait(instance["id"], until={"running"}, timeout=600)

Nothing here imports the server: the client installs and runs on its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypedDict

import httpx

from bigdata_paas.client import sse

PREFIX = "/bigdata/api/v1"
#: seconds a stream may stay silent before the connection counts as dead (the server sends a
#: keep-alive every 15 s by default)
STREAM_READ_TIMEOUT = 60.0
#: statuses an instance cannot leave by itself
ENDS = ("failed", "destroyed")


class Event(TypedDict):
    id: int
    instance_id: str
    at: str
    step: str
    status: str
    message: str


class LogLine(TypedDict):
    id: int
    at: str
    command: str
    stream: str
    line: str


class Node(TypedDict, total=False):
    name: str
    cpu: int
    mem: int
    host: str | None
    address: str | None
    disks: list[dict]
    networks: dict
    services: list[str]
    check_ports: list[int]


class InstanceError(TypedDict):
    step: str | None
    reason: str | None


#: the ``error`` of an instance that did not fail (read it, never change it)
NO_ERROR = InstanceError(step=None, reason=None)


class Instance(TypedDict, total=False):
    id: str
    name: str
    service: str
    version: str
    user: str | None
    status: str
    options: dict
    merged_options: dict | None
    nodes: list[Node]
    services: dict
    error: InstanceError
    waiting_for: str
    created_at: str
    updated_at: str


class ClientError(Exception):
    """Anything the client reports: the API refused, the server was unreachable, a wait
    ended without the wanted status."""


class ApiError(ClientError):
    """The API answered with its error envelope: ``status``, ``code``, ``message``,
    ``details`` (a 400 lists every problem in ``details["problems"]``)."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details

    @property
    def problems(self) -> list[dict]:
        if isinstance(self.details, dict):
            return list(self.details.get("problems") or [])
        return []

    def __str__(self) -> str:
        return f"{self.message} ({self.status} {self.code})"


class ConnectionFailed(ClientError):
    """The server could not be reached (or the connection broke before any answer)."""


class InstanceFailed(ClientError):
    """A wait ended because the instance failed, or can no longer reach the wanted status."""

    def __init__(self, instance: Instance, message: str | None = None) -> None:
        error = instance.get("error") or NO_ERROR
        self.instance, self.step, self.reason = instance, error.get("step"), error.get("reason")
        if message is None:
            message = f"instance {instance['id']} failed at {self.step}: {self.reason}"
        super().__init__(message)


class WaitTimeout(ClientError):
    """A wait outlived its timeout; ``instance`` is the instance as it was then."""

    def __init__(self, instance: Instance, timeout: float) -> None:
        self.instance, self.timeout = instance, timeout
        status = instance.get("status")
        why = f" (waiting for: {instance['waiting_for']})" if instance.get("waiting_for") else ""
        super().__init__(f"instance {instance.get('id')} is still {status}{why}")


class _Deadline(Exception):
    """The deadline of a wait passed while following."""


def api_url(url: str) -> str:
    """The API's address from the server's: ``http://host:5000`` and
    ``http://host:5000/bigdata/api/v1`` give the same; a bare ``host:port`` means http."""
    url = url.strip().rstrip("/")
    if not url:
        raise ValueError("the server's URL is empty")
    if "://" not in url:
        url = f"http://{url}"
    return url if url.endswith(PREFIX) else url + PREFIX


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
        error = body["error"]
        return ApiError(response.status_code, error["code"], error["message"], error.get("details"))
    except (ValueError, KeyError, TypeError):
        text = response.text.strip()[:200] or response.reason_phrase
        return ApiError(response.status_code, "http_error", text)


class Client:
    """A client of one server with one token. Every method raises :class:`ApiError` when the
    API refuses, :class:`ConnectionFailed` when the server cannot be reached."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base = api_url(url)
        headers = {"User-Agent": "bigdata-paas-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.base,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"cannot reach {self.base}: {exc}") from exc
        if response.status_code >= 400:
            raise _error(response)
        return response

    def _json(self, method: str, path: str, **kwargs) -> Any:
        return self._request(method, path, **kwargs).json()

    # -- the catalog ---------------------------------------------------------------------------

    def services(self) -> list[dict]:
        """The catalog: each service's name, description and versions."""
        return self._json("GET", "/services")["services"]

    def versions(self, name: str) -> list[dict]:
        return self._json("GET", f"/services/{name}")["versions"]

    def service(self, name: str, version: str) -> dict:
        return self._json("GET", f"/services/{name}/{version}")

    def register_service(self, name: str, version: str, description: str = "") -> dict:
        body = {"name": name, "version": version, "description": description}
        return self._json("POST", "/services", json=body)

    def delete_service(self, name: str, version: str) -> None:
        self._request("DELETE", f"/services/{name}/{version}")

    def template(self, name: str, version: str) -> str:
        return self._request("GET", f"/services/{name}/{version}/template").text

    def put_template(self, name: str, version: str, text: str, *, yaml: bool = False) -> dict:
        content_type = "application/yaml" if yaml else "application/json"
        return self._json(
            "PUT",
            f"/services/{name}/{version}/template",
            content=text.encode(),
            headers={"Content-Type": content_type},
        )

    def options(self, name: str, version: str) -> dict:
        return self._json("GET", f"/services/{name}/{version}/options")

    def put_options(self, name: str, version: str, document: dict) -> dict:
        return self._json("PUT", f"/services/{name}/{version}/options", json=document)

    def options_schema(self, name: str, version: str) -> dict:
        """The options as a JSON Schema (draft 2020-12)."""
        return self._json("GET", f"/services/{name}/{version}/options/schema")

    def put_orquestrator(
        self, name: str, version: str, script: str, *, timeout: int | None = None
    ) -> dict:
        return self._json(
            "PUT",
            f"/services/{name}/{version}/orquestrator",
            content=script.encode(),
            params={"timeout": timeout} if timeout else None,
            headers={"Content-Type": "text/plain"},
        )

    # -- instances -----------------------------------------------------------------------------

    def launch(
        self,
        name: str,
        version: str,
        options: dict | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Instance:
        """Launch an instance (202): the pipeline runs; :meth:`wait` or :meth:`follow` it."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._json(
            "POST", f"/services/{name}/{version}", json=options or {}, headers=headers
        )

    def plan(self, name: str, version: str, options: dict | None = None) -> dict:
        """Where an instance would run now, or why it cannot; nothing is allocated."""
        return self._json("POST", f"/services/{name}/{version}/plan", json=options or {})

    def instances(self, *, per_page: int = 100, **filters: str | None) -> Iterator[Instance]:
        """Every instance you may see (admins: all), newest first, page after page.
        Filters: ``service``, ``version``, ``status``, ``user`` (admins)."""
        params = {k: v for k, v in filters.items() if v is not None}
        page = 1
        while True:
            body = self._json(
                "GET", "/instances", params={**params, "page": page, "per_page": per_page}
            )
            yield from body["items"]
            if not body["has_more"] or not body["items"]:
                return
            page += 1

    def instance(self, instance_id: str) -> Instance:
        return self._json("GET", f"/instances/{instance_id}")

    def events(
        self, instance_id: str, *, after: int | None = None, wait: float | None = None
    ) -> list[Event]:
        """The instance's events after ``after``; with ``wait``, a long-poll (at most 60 s)."""
        params: dict[str, Any] = {}
        if after is not None:
            params["after"] = after
        if wait:
            params["wait"] = wait
        timeout = httpx.Timeout(30.0 + (wait or 0), connect=10.0)
        return self._json(
            "GET", f"/instances/{instance_id}/events", params=params, timeout=timeout
        )["events"]

    def logs(self, instance_id: str, *, after: int | None = None) -> list[LogLine]:
        """Every orquestrator output line after ``after`` (all of them without)."""
        lines: list[LogLine] = []
        cursor = after
        while True:
            params = {"after": cursor} if cursor else None
            body = self._json("GET", f"/instances/{instance_id}/logs", params=params)
            lines += body["lines"]
            if not body["lines"] or body["last"] == cursor:
                return lines
            cursor = body["last"]

    def destroy(self, instance_id: str) -> Instance:
        """Start destroying the instance (202); :meth:`wait` for ``destroyed``."""
        return self._json("DELETE", f"/instances/{instance_id}")

    def resize(
        self,
        instance_id: str,
        options: dict,
        *,
        remove: list[str] | None = None,
        dry_run: bool = False,
    ) -> dict:
        """Resize a running instance with new options (202, ``updating``); with ``dry_run``,
        what would change and where new nodes would go (200), nothing changed."""
        body: dict[str, Any] = {"options": options}
        if remove:
            body["remove"] = remove
        params = {"dry_run": "true"} if dry_run else None
        return self._json("PATCH", f"/instances/{instance_id}", json=body, params=params)

    def retry(self, instance_id: str) -> Instance:
        """Run a failed instance again from the step that failed (202)."""
        return self._json("POST", f"/instances/{instance_id}/retry")

    # -- inventory and users (admins) --------------------------------------------------------

    def hosts(self) -> list[dict]:
        return self._json("GET", "/hosts")["hosts"]

    def host(self, name: str) -> dict:
        return self._json("GET", f"/hosts/{name}")

    def add_host(self, body: dict) -> dict:
        return self._json("POST", "/hosts", json=body)

    def update_host(self, name: str, changes: dict) -> dict:
        return self._json("PATCH", f"/hosts/{name}", json=changes)

    def delete_host(self, name: str) -> None:
        self._request("DELETE", f"/hosts/{name}")

    def networks(self) -> list[dict]:
        return self._json("GET", "/networks")["networks"]

    def network(self, name: str) -> dict:
        return self._json("GET", f"/networks/{name}")

    def add_network(self, body: dict) -> dict:
        return self._json("POST", "/networks", json=body)

    def delete_network(self, name: str) -> None:
        self._request("DELETE", f"/networks/{name}")

    def users(self) -> list[dict]:
        return self._json("GET", "/users")["users"]

    def create_user(self, name: str, role: str = "user") -> dict:
        """Create a user; the answer's ``token`` is shown this once."""
        return self._json("POST", "/users", json={"name": name, "role": role})

    def me(self) -> dict:
        """You: role, token expiry, and per resource your quota's ``limit`` and ``used``."""
        return self._json("GET", "/users/me")

    def user(self, name: str) -> dict:
        return self._json("GET", f"/users/{name}")

    def set_quota(self, name: str, limits: dict) -> dict:
        """Set some of ``name``'s limits (None: unlimited); the answer is limits and usage."""
        return self._json("PUT", f"/users/{name}/quota", json=limits)

    def rotate_token(self, name: str | None = None, expires_in: int | None = None) -> dict:
        """A new token for you (or, as an admin, for ``name``), shown this once."""
        body = {"expires_in": expires_in} if expires_in else {}
        return self._json("POST", f"/users/{name or 'me'}/token", json=body)

    def health(self) -> dict:
        """The server's health, also when it answers 503 (something is down)."""
        try:
            response = self._http.get("/health")
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"cannot reach {self.base}: {exc}") from exc
        if response.status_code not in (200, 503):
            raise _error(response)
        return response.json()

    # -- following -----------------------------------------------------------------------------

    def follow(
        self,
        instance_id: str,
        *,
        after: int | None = None,
        follow: bool = False,
        on_reconnect: Callable[[Exception], None] | None = None,
    ) -> Iterator[Event]:
        """The instance's events as they happen, from after ``after`` (from the first
        without). Ends after running, failed or destroyed (with ``follow``, after failed or
        destroyed); a dropped connection is reopened where it stopped, each event once."""
        path = f"/instances/{instance_id}/events/stream"
        params = {"follow": "true"} if follow else None
        yield from self._follow(path, after, params, None, on_reconnect)

    def follow_logs(
        self,
        instance_id: str,
        *,
        after: int | None = None,
        follow: bool = False,
        on_reconnect: Callable[[Exception], None] | None = None,
    ) -> Iterator[LogLine]:
        """The instance's orquestrator output as it is written; ends as :meth:`follow`."""
        path = f"/instances/{instance_id}/logs/stream"
        params = {"follow": "true"} if follow else None
        yield from self._follow(path, after, params, None, on_reconnect)

    def follow_all(
        self,
        *,
        after: int | None = None,
        on_reconnect: Callable[[Exception], None] | None = None,
    ) -> Iterator[Event]:
        """Every event of the instances you may see (admins: all), from now on (or after
        ``after``); never ends by itself."""
        yield from self._follow("/events/stream", after, None, None, on_reconnect)

    def _follow(
        self,
        path: str,
        after: int | None,
        params: dict | None,
        deadline: float | None,
        on_reconnect: Callable[[Exception], None] | None,
    ) -> Iterator[Any]:
        """Read a stream, and open it again after the last id whenever it ends or drops,
        until the server answers 204 (nothing more will come)."""
        cursor, connected, failures = after, False, 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if cursor is not None:
                headers["Last-Event-ID"] = str(cursor)
            read = STREAM_READ_TIMEOUT
            if deadline is not None:
                read = min(read, deadline - time.monotonic())
                if read <= 0:
                    raise _Deadline
            try:
                with self._http.stream(
                    "GET",
                    path,
                    params=params,
                    headers=headers,
                    timeout=httpx.Timeout(10.0, read=read),
                ) as response:
                    if response.status_code == 204:
                        return
                    if response.status_code >= 400:
                        response.read()
                        error = _error(response)
                        if error.status != 503 or not connected:
                            raise error
                        raise httpx.RemoteProtocolError(str(error))  # busy: try again soon
                    connected = True
                    decoder = sse.Decoder()
                    for line in response.iter_lines():
                        # keep-alives come as lines too: a deadline is seen even when quiet
                        if deadline is not None and time.monotonic() >= deadline:
                            raise _Deadline
                        message = decoder.feed(line)
                        if message is None:
                            continue
                        if message.id is not None and message.id.isdigit():
                            if cursor is not None and int(message.id) <= cursor:
                                continue  # already seen (never sent twice, but be sure)
                            cursor = int(message.id)
                        if message.data:
                            failures = 0
                            yield json.loads(message.data)
                # The server ended the stream (a terminal status, its max age, a restart):
                # ask again; a 204 says it was the end.
                continue
            except httpx.ReadTimeout as exc:
                if deadline is not None and time.monotonic() >= deadline:
                    raise _Deadline from exc
                problem: Exception = exc
            except httpx.TransportError as exc:
                if not connected:
                    raise ConnectionFailed(f"cannot reach {self.base}: {exc}") from exc
                problem = exc
            failures += 1
            if on_reconnect is not None:
                on_reconnect(problem)
            pause = min(5.0, 0.25 * 2 ** min(failures, 5))
            if deadline is not None:
                pause = min(pause, max(0.0, deadline - time.monotonic()))
            time.sleep(pause)

    def wait(
        self,
        instance_id: str,
        until: Iterable[str] = ("running",),
        *,
        timeout: float | None = None,
        after: int | None = None,
        on_event: Callable[[Event], None] | None = None,
        on_reconnect: Callable[[Exception], None] | None = None,
    ) -> Instance:
        """Follow the instance until its status is one of ``until``; return it then.

        Raises :class:`InstanceFailed` when it fails (or is destroyed, or can no longer get
        there), :class:`WaitTimeout` after ``timeout`` seconds. ``on_event`` sees each event
        (from after ``after``, from the first without) as it comes.
        """
        wanted = set(until)
        deadline = None if timeout is None else time.monotonic() + timeout
        instance = self.instance(instance_id)
        reached = _decide(instance, wanted)
        if reached is not None:
            return reached
        path = f"/instances/{instance_id}/events/stream"
        params = None if "running" in wanted else {"follow": "true"}
        try:
            for event in self._follow(path, after, params, deadline, on_reconnect):
                if on_event is not None:
                    on_event(event)
                # A status that may decide; the instance's own status decides (an event of
                # the backlog may be history, like a failure before a retry).
                if event["status"] in wanted or event["status"] in (*ENDS, "destroying"):
                    instance = self.instance(instance_id)
                    reached = _decide(instance, wanted)
                    if reached is not None:
                        return reached
                if deadline is not None and time.monotonic() >= deadline:
                    raise _Deadline
        except _Deadline:
            raise WaitTimeout(self.instance(instance_id), timeout or 0) from None
        instance = self.instance(instance_id)  # the stream is over
        reached = _decide(instance, wanted)
        if reached is not None:
            return reached
        raise InstanceFailed(
            instance,
            f"instance {instance_id} is {instance['status']} and will not become "
            f"{' or '.join(sorted(wanted))}",
        )


def _decide(instance: Instance, wanted: set[str]) -> Instance | None:
    """The instance if it reached a wanted status; raise if it never will; None: wait."""
    status = instance["status"]
    if status in wanted:
        return instance
    if status == "failed":
        raise InstanceFailed(instance)
    if status in ("destroying", "destroyed") and not wanted & {"destroying", "destroyed"}:
        raise InstanceFailed(instance, f"instance {instance['id']} is {status}")
    return None
