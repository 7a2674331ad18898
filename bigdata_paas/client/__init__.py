"""A small typed client of the bigdata-paas REST API, and the ``paas`` command built on it."""

from bigdata_paas.client.api import (
    ApiError,
    Client,
    ClientError,
    ConnectionFailed,
    Event,
    Instance,
    InstanceFailed,
    LogLine,
    WaitTimeout,
    api_url,
)

__all__ = [
    "ApiError",
    "Client",
    "ClientError",
    "ConnectionFailed",
    "Event",
    "Instance",
    "InstanceFailed",
    "LogLine",
    "WaitTimeout",
    "api_url",
]
