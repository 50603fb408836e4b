"""Typed application keys shared by the API modules."""

from __future__ import annotations

from aiohttp import web

from monitor.api.openapi import OpenApiSpec
from monitor.runtime import Runtime

RUNTIME = web.AppKey("runtime", Runtime)
SPEC = web.AppKey("openapi", OpenApiSpec)
