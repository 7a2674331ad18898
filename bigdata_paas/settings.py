"""Settings for every process, read from ``PAAS_*`` environment variables once.

Each setting is declared with its type and default; a malformed value fails at
start-up with a message that names the variable. Any setting may instead come from a file
named by ``PAAS_<NAME>_FILE`` (how container platforms and systemd credentials hand secrets
over: ``PAAS_ADMIN_TOKEN_FILE=/run/secrets/admin-token``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A ``PAAS_*`` variable that cannot be used."""


#: PostgreSQL connections a process keeps open, and opens on top at busy moments (db.py;
#: PAAS_DB_POOL_SIZE, PAAS_DB_MAX_OVERFLOW)
POOL_SIZE, POOL_OVERFLOW = 24, 10


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected true or false")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("expected an integer >= 1")
    return value


def _optional_count(text: str) -> int | None:
    if not text.strip():
        return None
    value = int(text)
    if value < 0:
        raise ValueError("expected an integer >= 0, or empty for unlimited")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("expected an integer >= 0")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise ValueError("expected a port number 1..65535")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("expected a number > 0")
    return value


def _choice(*choices: str):
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return text

    return parse


def read_setting(environ: Mapping[str, str], name: str) -> str | None:
    """The text of the variable ``name``, or of the file ``name``_FILE names (without its
    trailing newline), or None when neither is set; both set is an error, as is a file that
    cannot be read."""
    path = environ.get(f"{name}_FILE")
    if path is None:
        return environ.get(name)
    if name in environ:
        raise ConfigError(f"{name} and {name}_FILE are both set: set one of them")
    try:
        return Path(path).read_text().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{name}_FILE={path!r}: cannot read it: {reason}") from None


def setting(default: Any, parse=str, doc: str = "") -> Any:
    """Declare a setting: its default, how to parse its variable, what it means."""
    return field(default=default, metadata={"parse": parse, "doc": doc})


@dataclass
class Config:
    """Production defaults are embedded: SQLite and a filesystem broker under ``DATA_DIR``."""

    DATA_DIR: str = setting("./var", doc="where the SQLite database, broker files and work dirs go")
    HOST: str = setting("127.0.0.1", doc="address the web process binds to")
    PORT: int = setting(5000, _port, "web port")
    FLOWER_HOST: str = setting("127.0.0.1", doc="address Flower binds to")
    FLOWER_PORT: int = setting(5555, _port, "Flower port")
    FLOWER_USER: str = setting("admin", doc="Flower basic-auth user")
    FLOWER_PASSWORD: str = setting("", doc="Flower basic-auth password (generated if empty)")
    ADMIN_TOKEN: str = setting("", doc="bearer token of the user `admin` (generated if empty)")
    CONSOLE_SECRET_KEY: str = setting(
        "", doc="key signing the web console's session cookies (generated into DATA_DIR if empty)"
    )
    DATABASE_URL: str = setting("", doc="SQLAlchemy URL; default sqlite:///DATA_DIR/paas.sqlite3")
    DB_POOL_SIZE: int = setting(
        POOL_SIZE, _positive_int, "PostgreSQL connections each process keeps open (web: per worker)"
    )
    DB_MAX_OVERFLOW: int = setting(
        POOL_OVERFLOW, _count, "more a process may open at busy moments, closed after use"
    )
    BROKER_URL: str = setting("", doc="Celery broker URL; default filesystem://localhost/")
    BROKER_POLLING_INTERVAL: float = setting(
        0.01, _positive_float, "seconds between polls of the filesystem broker"
    )
    QUEUE_PREFIX: str = setting("", doc="prefix of the Celery queue names (isolates test runs)")
    PUBLISH_TIMEOUT: float = setting(
        3.0, _positive_float, "seconds a launch waits for the broker before answering 503"
    )
    MAX_NODES: int = setting(200, _positive_int, "most nodes one instance may have")
    MAX_BODY_BYTES: int = setting(1024 * 1024, _positive_int, "largest request body accepted")
    RENDER_TIMEOUT: float = setting(5.0, _positive_float, "seconds a template may take to render")
    RENDER_MAX_OUTPUT: int = setting(2_000_000, _positive_int, "largest rendered template (chars)")
    RENDER_MAX_MEMORY_MB: int = setting(512, _positive_int, "memory of the render process (MB)")
    ORQUESTRATOR_TIMEOUT: float = setting(
        600.0, _positive_float, "seconds an orquestrator command may run"
    )
    ORQUESTRATOR_MAX_TIMEOUT: float = setting(
        86400.0, _positive_float, "largest per-service orquestrator timeout (?timeout=)"
    )
    ORQUESTRATOR_MAX_OUTPUT: int = setting(
        1_000_000, _positive_int, "bytes of orquestrator output kept per command"
    )
    ORQUESTRATOR_MAX_PROCESSES: int = setting(
        512, _positive_int, "processes of the unprivileged user orquestrators run as (all of them)"
    )
    ORQUESTRATOR_MAX_MEMORY_MB: int = setting(
        1024, _positive_int, "address space of an orquestrator process (MB)"
    )
    HEARTBEAT_INTERVAL: float = setting(
        10.0, _positive_float, "seconds between heartbeats of a running orquestrator command"
    )
    HEARTBEAT_TIMEOUT: float = setting(
        60.0, _positive_float, "seconds without a heartbeat after which a run counts as lost"
    )
    RUN_ATTEMPTS: int = setting(3, _positive_int, "times a lost orquestrator start is retried")
    HEALTH_TIMEOUT: float = setting(60.0, _positive_float, "seconds for check_ports to answer")
    SWEEP_INTERVAL: float = setting(30.0, _positive_float, "seconds between sweeps (beat)")
    STALE_AFTER: float = setting(
        60.0, _positive_float, "seconds an in-flight status may stay unchanged before the sweep"
    )
    PLACEMENT_STRATEGY: str = setting(
        "binpack", _choice("binpack", "spread"), "how hosts are scored"
    )
    NODE_DRIVER: str = setting(
        "auto",
        _choice("auto", "podman", "process"),
        "how agents run nodes: podman containers, processes, or auto (podman when it works)",
    )
    IMAGE_ALLOW: str = setting(
        "", doc="comma-separated prefixes node images must start with (empty: any image)"
    )
    AGENT_HOSTS: str = setting(
        "node01,node02,node03,node04",
        doc="hosts `make run` starts an agent for (comma-separated; the demo inventory's)",
    )
    AGENT_DISKS: str = setting(
        "simulated",
        _choice("simulated", "mounted"),
        "host disks: directories under DATA_DIR/agents/<host> the agent makes (several hosts on "
        "one machine), or the real mounts at each disk's origin (/data/<disk>)",
    )
    AGENT_HEARTBEAT: float = setting(
        10.0, _positive_float, "seconds between an agent's reports (heartbeat and its nodes)"
    )
    HOST_DOWN_AFTER: float = setting(
        60.0, _positive_float, "seconds an agent may stay silent before its host is down"
    )
    NODE_START_TIMEOUT: float = setting(
        120.0, _positive_float, "seconds the run step waits for every node to start"
    )
    NODE_STOP_TIMEOUT: float = setting(
        30.0, _positive_float, "seconds a destroy waits for agents to stop the nodes"
    )
    DEFAULT_QUOTA_INSTANCES: int | None = setting(
        None, _optional_count, "live instances a user may hold, unless set (empty: unlimited)"
    )
    DEFAULT_QUOTA_NODES: int | None = setting(
        None, _optional_count, "nodes a user's live instances may have (empty: unlimited)"
    )
    DEFAULT_QUOTA_CPU: int | None = setting(
        None, _optional_count, "cores a user's live instances may ask for (empty: unlimited)"
    )
    DEFAULT_QUOTA_MEM: int | None = setting(
        None, _optional_count, "memory (MB) a user's live instances may ask for (empty: unlimited)"
    )
    DEFAULT_QUOTA_DISKS: int | None = setting(
        None, _optional_count, "disks a user's live instances may ask for (empty: unlimited)"
    )
    PAGE_SIZE: int = setting(50, _positive_int, "default page size of listings")
    WEB_WORKERS: int = setting(2, _positive_int, "gunicorn worker processes of the web process")
    WEB_THREADS: int = setting(
        256, _positive_int, "threads per web worker (gthread); each open event stream holds one"
    )
    STREAM_KEEPALIVE: float = setting(
        15.0, _positive_float, "seconds between keep-alive comments of a quiet event stream"
    )
    STREAM_POLL_INTERVAL: float = setting(
        0.5, _positive_float, "seconds between a web process's looks for new events (streams open)"
    )
    STREAM_MAX_AGE: float = setting(
        3600.0,
        _positive_float,
        "seconds a stream or long-poll stays open before the client resumes",
    )
    STREAM_GAP_TIMEOUT: float = setting(
        10.0,
        _positive_float,
        "PostgreSQL: seconds streams wait for an open transaction that may commit an older event",
    )
    LOG_LEVEL: str = setting("INFO", _choice("DEBUG", "INFO", "WARNING", "ERROR"), "log level")
    LOG_FORMAT: str = setting(
        "json", _choice("json", "text"), "log lines as JSON objects, or text for a terminal"
    )
    METRICS_TOKEN: str = setting("", doc="bearer token for GET /metrics (the admin's works too)")
    PROBE_TIMEOUT: float = setting(
        2.0, _positive_float, "seconds /readyz waits for the database and the broker"
    )
    TESTING: bool = setting(False, _bool, "test mode")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Build the settings from ``PAAS_*`` variables (or the files ``PAAS_*_FILE`` name);
        raise ConfigError naming a bad one."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f"PAAS_{f.name}"
            text = read_setting(environ, name)
            if text is not None:
                try:
                    values[f.name] = f.metadata["parse"](text)
                except ValueError as exc:
                    if name in environ:
                        raise ConfigError(f"{name}={text!r}: {exc}") from None
                    # a file's content is not repeated: it may be a secret
                    reason = str(exc).replace(text, "...") if text else str(exc)
                    raise ConfigError(f"{name}_FILE's content: {reason}") from None
        values.update(overrides)
        return cls(**values)

    @property
    def data_path(self) -> Path:
        return Path(self.DATA_DIR).resolve()

    @property
    def database_url(self) -> str:
        return self.DATABASE_URL or f"sqlite:///{self.data_path / 'paas.sqlite3'}"

    @property
    def stream_limit(self) -> int:
        """Streams and long-polls one web worker holds at once: its threads but a reserve, so
        that ordinary requests always find a thread."""
        return max(1, self.WEB_THREADS - max(4, self.WEB_THREADS // 8))

    @property
    def broker_url(self) -> str:
        return self.BROKER_URL or "filesystem://localhost/"

    @property
    def uses_filesystem_broker(self) -> bool:
        return self.broker_url.startswith("filesystem:")

    @property
    def broker_path(self) -> Path:
        return self.data_path / "broker"

    @property
    def work_path(self) -> Path:
        return self.data_path / "work"

    def queue(self, name: str) -> str:
        """Name of one of the platform's queues (``pipeline``, ``orquestrator``)."""
        return f"{self.QUEUE_PREFIX}{name}"

    def host_queue(self, host: str) -> str:
        """The durable queue of ``host``'s agent."""
        return self.queue(f"host.{host}")

    @property
    def deployment(self) -> str:
        """This deployment's name where it shares a machine's container runtime with others:
        QUEUE_PREFIX in letters, digits, '_', '.' and '-' (empty for the default deployment).

        Agents label their containers ``paas.deployment=<name or "default">`` and see only
        their deployment's, and name its podman networks ``paas-<name>-<network>``: a test run
        and a demo on one machine never reconcile away each other's nodes.
        """
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", self.QUEUE_PREFIX).strip("-_.")[:40]

    @property
    def agent_hosts(self) -> list[str]:
        return [h.strip() for h in self.AGENT_HOSTS.split(",") if h.strip()]

    @property
    def agents_path(self) -> Path:
        """Where agents on this machine keep their nodes' state and disk directories."""
        return self.data_path / "agents"

    @classmethod
    def describe(cls) -> list[tuple[str, Any, str]]:
        """(variable, default, meaning) of every setting, for docs and ``--help``."""
        return [(f"PAAS_{f.name}", f.default, f.metadata["doc"]) for f in fields(cls)]


@dataclass
class TestConfig(Config):
    """Settings for the test suite: small limits, fast timeouts."""

    TESTING: bool = setting(True, _bool)
    RENDER_TIMEOUT: float = setting(2.0, _positive_float)
    ORQUESTRATOR_TIMEOUT: float = setting(20.0, _positive_float)
    HEARTBEAT_INTERVAL: float = setting(
        10.0, _positive_float, "seconds between heartbeats of a running orquestrator command"
    )
    HEARTBEAT_TIMEOUT: float = setting(
        60.0, _positive_float, "seconds without a heartbeat after which a run counts as lost"
    )
    RUN_ATTEMPTS: int = setting(3, _positive_int, "times a lost orquestrator start is retried")
    HEALTH_TIMEOUT: float = setting(5.0, _positive_float)
    PUBLISH_TIMEOUT: float = setting(1.0, _positive_float)
