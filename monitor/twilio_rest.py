"""Twilio's REST API through the official `twilio` client on aiohttp: deliver sends SMS with
it, the API looks up when Twilio received an inbound message with it."""

from __future__ import annotations

import aiohttp
from pydantic import SecretStr
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client


class TwilioHttp(AsyncTwilioHttpClient):  # type: ignore[misc]
    """twilio's async HTTP client, plugged in through its official `http_client=` hook.

    It sends the Basic credentials as a header (aiohttp deprecates its `BasicAuth` helper,
    which the stock client uses) and gives every request a total timeout (the stock client
    passes none to aiohttp).
    """

    def __init__(self, timeout_s: float) -> None:
        super().__init__(pool_connections=True)
        self._total = aiohttp.ClientTimeout(total=timeout_s)

    async def request(self, method: str, url: str, params: dict[str, object] | None = None,
                      data: dict[str, object] | None = None,
                      headers: dict[str, str] | None = None,
                      auth: tuple[str, str] | None = None, timeout: float | None = None,
                      allow_redirects: bool = False) -> Response:
        hdrs = dict(headers or {})
        if auth is not None:
            hdrs["Authorization"] = aiohttp.encode_basic_auth(auth[0], auth[1])
        assert self.session is not None
        async with self.session.request(method.upper(), url, params=params, data=data,
                                        headers=hdrs, allow_redirects=allow_redirects,
                                        timeout=self._total) as resp:
            text = await resp.text()
            return Response(resp.status, text, resp.headers)


def rest_client(account_sid: str, auth_token: SecretStr, http: TwilioHttp,
                api_base_url: str | None) -> Client:
    # environment={} ignores TWILIO_* variables: config comes from capmon's settings only.
    client = Client(account_sid, auth_token.get_secret_value(), http_client=http,
                    environment={})
    if api_base_url:
        client.api.base_url = api_base_url.rstrip("/")
    return client
