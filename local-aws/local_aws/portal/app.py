"""The worker portal's HTTP app: sign-in, the job list, task pages and their answers, task images.

Routes (every POST needs the session's CSRF token; every response carries ``responses.SECURITY_HEADERS``):

- ``GET /_local/health``: ``{"status": "ok"}`` once the portal is up;
- ``GET``/``POST /sign-in``, ``POST /sign-out``;
- ``GET /``: the signed-in worker's jobs; ``POST /jobs/{job}/start``: their next task of the job;
- ``GET /tasks/{id}``: the task page; ``POST /tasks/{id}/submit`` (JSON, from the crowd form),
  ``/skip`` and ``/release``;
- ``GET /task-images/{token}``: a task image, by the signed URL the task page was rendered with;
- ``/static/...``: the portal's stylesheet and scripts, its crowd HTML elements among them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from local_aws.config import LocalAwsConfig
from local_aws.portal.context import PortalContext
from local_aws.portal.endpoints import endpoint
from local_aws.portal.responses import SecurityHeaders, json_error
from local_aws.portal.sign_in_routes import SignInRoutes
from local_aws.portal.task_images import TaskImages
from local_aws.portal.work_routes import SUBMIT_BODY_LIMIT, WorkRoutes

STATIC_DIR = Path(__file__).parent / "static"


def create_app(config: LocalAwsConfig | None = None, *, clock: Callable[[], float] = time.time) -> Starlette:
    """The portal for ``config``'s state file and S3; ``clock`` gives the time (tests move it)."""
    context = PortalContext(config or LocalAwsConfig(), clock)
    sign_in = SignInRoutes(context)
    work = WorkRoutes(context)
    images = TaskImages(context)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    def too_large_json(message: str) -> Response:
        return json_error(message, 413)

    return Starlette(
        routes=[
            Route("/_local/health", health, methods=["GET"]),
            Route("/sign-in", endpoint(sign_in.form), methods=["GET"]),
            Route("/sign-in", endpoint(sign_in.sign_in), methods=["POST"]),
            Route("/sign-out", endpoint(sign_in.sign_out), methods=["POST"]),
            Route("/", endpoint(work.jobs), methods=["GET"]),
            Route("/jobs/{job}/start", endpoint(work.start), methods=["POST"]),
            Route("/tasks/{task_id:int}", endpoint(work.task), methods=["GET"]),
            Route(
                "/tasks/{task_id:int}/submit",
                endpoint(work.submit, body_limit=SUBMIT_BODY_LIMIT, too_large=too_large_json),
                methods=["POST"],
            ),
            Route("/tasks/{task_id:int}/skip", endpoint(work.skip), methods=["POST"]),
            Route("/tasks/{task_id:int}/release", endpoint(work.release), methods=["POST"]),
            Route("/task-images/{token}", endpoint(images.image), methods=["GET"]),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        middleware=[Middleware(SecurityHeaders)],
    )
