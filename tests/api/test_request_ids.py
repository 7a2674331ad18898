"""Every answer names its request: the client's X-Request-ID when well formed, else a new one."""

from __future__ import annotations

import logging

from tests.api.support import API


def test_a_well_formed_id_is_answered_back(client, admin):
    response = client.get(f"{API}/services", headers={**admin, "X-Request-ID": "abc-12345678"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "abc-12345678"


def test_without_one_each_request_gets_its_own(client, admin):
    first = client.get(f"{API}/services", headers=admin).headers["X-Request-ID"]
    second = client.get(f"{API}/services", headers=admin).headers["X-Request-ID"]
    assert len(first) == len(second) == 32 and first != second


def test_refusals_and_probes_are_named_too(client):
    refused = client.get(f"{API}/services", headers={"X-Request-ID": "refused-1234"})
    assert refused.status_code == 401 and refused.headers["X-Request-ID"] == "refused-1234"
    assert client.get(f"{API}/livez").headers["X-Request-ID"]


def test_a_malformed_id_is_replaced_and_the_log_says_so(client, admin, caplog):
    with caplog.at_level(logging.WARNING, logger="bigdata_paas.api.requests"):
        response = client.get(f"{API}/services", headers={**admin, "X-Request-ID": "a b c d e f"})
    assert response.status_code == 200  # a tracing header never fails a request
    answered = response.headers["X-Request-ID"]
    assert answered != "a b c d e f" and len(answered) == 32
    assert f"X-Request-ID refused (8 to 128 of A-Z a-z 0-9 +=/._:-); using {answered}" in (
        caplog.text
    )
