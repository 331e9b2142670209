"""The portal's responses: pages, redirects and JSON errors, and the security headers every one carries.

The headers keep the portal's pages to the portal: scripts only from its own origin (no inline script, so
markup that slips into a page cannot run), no framing, no referrer leaking a task's URL, nothing cached
(task pages hold CSRF tokens). Task images set their own Cache-Control, which the middleware keeps.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self';"
    " frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class SecurityHeaders:
    """ASGI middleware: the security headers on every response, and ``no-store`` unless it says otherwise."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def page(html: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return HTMLResponse(html, status_code=status, headers=headers)


def see_other(url: str) -> Response:
    """A 303: after a POST the browser GETs ``url``, so reloading it does not post again."""
    return RedirectResponse(url, status_code=303)


def json_error(message: str, status: int) -> Response:
    """What the crowd form shows the worker: ``{"error": message}``."""
    return JSONResponse({"error": message}, status_code=status)
