"""Domain errors shared by the API, the operations and the pipeline.

Nothing here imports Flask: the API maps these to HTTP in ``api/errors.py``
and the pipeline turns them into a ``failed`` status with a reason.
"""

from __future__ import annotations

from typing import Any


class PaasError(Exception):
    """Base of every error the platform reports to a user."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class ValidationError(PaasError):
    """Input that does not fit; ``problems`` lists every one, each naming a field."""

    status = 400
    code = "invalid_input"

    def __init__(self, problems: list[dict[str, str]] | str, *, field: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [{"field": field or "", "message": problems}]
        self.problems = problems
        summary = "; ".join(
            f"{p['field']}: {p['message']}" if p.get("field") else p["message"] for p in problems
        )
        super().__init__(summary, details={"problems": problems})


class TemplateError(PaasError):
    """A template that cannot be parsed or rendered, or renders to an invalid spec."""

    status = 422
    code = "template_error"

    def __init__(self, message: str, *, line: int | None = None) -> None:
        self.line = line
        self.reason = message  # without the line, to re-raise with more context
        text = f"line {line}: {message}" if line else message
        super().__init__(text, details={"line": line} if line else None)


class SpecError(TemplateError):
    """The rendered instance spec is not a valid spec."""

    code = "invalid_spec"


class ScriptError(TemplateError):
    """An orquestrator script that does not parse."""

    code = "invalid_orquestrator"


class NodeOptionsError(PaasError):
    """Node runtime fields the platform refuses: ``docker_opts`` outside the safe subset, a
    ``docker_image`` that PAAS_IMAGE_ALLOW does not allow, a ``command`` that cannot run.

    ``problems`` lists each as ``{"field": "nodes.<node>.<key>", "message", "option"}``.
    """

    status = 422
    code = "invalid_node_options"

    def __init__(self, problems: list[dict[str, str]]) -> None:
        self.problems = problems
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        super().__init__(summary, details={"problems": problems})


class Unauthorized(PaasError):
    status = 401
    code = "unauthorized"


class Forbidden(PaasError):
    status = 403
    code = "forbidden"


class QuotaExceeded(Forbidden):
    """A launch (or resize) that would take a user over a limit; ``exceeded`` lists each
    dimension over as ``{"resource", "requested", "used", "limit"}``."""

    code = "quota_exceeded"

    def __init__(self, exceeded: list[dict]) -> None:
        self.exceeded = exceeded
        summary = "; ".join(
            f"{e['resource']}: {e['requested']} requested, {e['used']} used of {e['limit']}"
            for e in exceeded
        )
        super().__init__(f"over quota: {summary}", details={"exceeded": exceeded})


class NotFound(PaasError):
    status = 404
    code = "not_found"


class Conflict(PaasError):
    status = 409
    code = "conflict"


class NoCapacity(Conflict):
    """Nodes that must be placed now (a resize does not queue) fit nowhere; ``details``
    carries the shortages."""

    code = "no_capacity"


class ResizeRefused(PaasError):
    """A resize the platform will not do: a node that stays would change, the service's
    orquestrator lacks the action, the nodes to remove do not match; ``problems`` as for
    ValidationError."""

    status = 422
    code = "resize_refused"

    def __init__(self, problems: list[dict[str, str]] | str, *, field: str = "options") -> None:
        if isinstance(problems, str):
            problems = [{"field": field, "message": problems}]
        self.problems = problems
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        super().__init__(summary, details={"problems": problems})


class IdempotencyConflict(Conflict):
    """An Idempotency-Key that this user already used for a different launch."""

    code = "idempotency_key_reused"


class Unavailable(PaasError):
    """A dependency (broker, database) cannot be reached right now; try again later."""

    status = 503
    code = "unavailable"
    #: seconds a client should wait before it tries again (the Retry-After header)
    retry_after = 5


class DatabaseUnavailable(Unavailable):
    """The database cannot be reached (down, restarting, connection lost) or is too busy.

    Raised as a session's transaction fails (``Database.session``), so it undid what that
    transaction had not committed; workers retry it like any transient error.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message or "the database is unreachable; nothing was changed, try again shortly"
        )
