"""RFC 6750: every 401 carries a `WWW-Authenticate: Bearer` challenge."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import bearer, new_tenant


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/subscriptions"), ("GET", "/v1/notifications"), ("GET", "/v1/tenants"),
    ("POST", "/v1/tenants"),
])
async def test_no_key_gets_a_bearer_challenge(client: TestClient[Any, Any], method: str,
                                              path: str) -> None:
    resp = await client.request(method, path, json={"name": "x"})
    assert resp.status == 401
    assert resp.content_type == "application/problem+json"
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="capmon"'


async def test_a_refused_key_gets_invalid_token(client: TestClient[Any, Any]) -> None:
    _tid, key = await new_tenant(client, "Challenged CCA")
    for path, token in (("/v1/subscriptions", "cm_not_a_key"), ("/v1/tenants", key)):
        resp = await client.get(path, headers=bearer(token))
        assert resp.status == 401, path
        assert resp.headers["WWW-Authenticate"] == (
            'Bearer realm="capmon", error="invalid_token"'), path
    # A key that works gets no challenge.
    resp = await client.get("/v1/subscriptions", headers=bearer(key))
    assert resp.status == 200 and "WWW-Authenticate" not in resp.headers
