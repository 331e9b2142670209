"""Starlette endpoints from the portal's synchronous handlers, with the request's body read within a limit.

The handlers block on SQLite (and argon2, and S3), so they run in Starlette's thread pool; reading the body
is the one thing done on the event loop, where a body over the limit is refused (413) before any of it is
parsed or any handler runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from local_aws.portal.forms import FORM_BODY_LIMIT, BodyTooLarge, read_body
from local_aws.portal.pages import problem_page
from local_aws.portal.responses import page

Handler = Callable[[Request, bytes], Response]
Endpoint = Callable[[Request], Awaitable[Response]]


def too_large_page(message: str) -> Response:
    return page(problem_page("Request too large", message), status=413)


def endpoint(
    handler: Handler,
    *,
    body_limit: int = FORM_BODY_LIMIT,
    too_large: Callable[[str], Response] = too_large_page,
) -> Endpoint:
    async def run(request: Request) -> Response:
        body = b""
        if request.method == "POST":
            try:
                body = await read_body(request, body_limit)
            except BodyTooLarge as err:
                return too_large(str(err))
        return await run_in_threadpool(handler, request, body)

    return run
