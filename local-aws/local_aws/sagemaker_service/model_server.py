"""One endpoint instance: the object-detection algorithm behind SageMaker's serving contract.

    python -m local_aws.sagemaker_service.model_server --model-data model.tar.gz (--port 8080 | --fd N)

``GET /ping`` answers 200 (the model is loaded before the server answers anything, so any answer means
ready); ``POST /invocations`` takes one encoded image (image/jpeg, image/png or application/x-image) and
answers the algorithm's JSON. A content type the algorithm does not read gets 415, an Accept that excludes
JSON 406, a body that is not an image 400: the runtime passes these on as a ModelError, as AWS does for a
container's error answer.

The endpoint manager starts it with ``--fd``: a socket it has bound and listens on, so the port is known
before the process starts and nothing can take it in between; ``--parent-pid`` ends the process when the
service that started it is gone. A model that cannot be loaded ends the process with exit code 1 and the
reason as the last line of stderr, which the manager reports as the endpoint's FailureReason.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
from pathlib import Path

import torch
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from local_aws.object_detection import (
    InvalidImageError,
    InvalidModelArtifactError,
    Predictor,
    UnsupportedContentTypeError,
    check_content_type,
)
from local_aws.sagemaker_service.background import exit_with_parent

log = logging.getLogger("model_server")

TORCH_THREADS_VARIABLE = "LOCAL_AWS_TORCH_THREADS"
_JSON = "application/json"


def create_app(predictor: Predictor) -> Starlette:
    async def ping(request: Request) -> Response:
        return Response(status_code=200)

    async def invocations(request: Request) -> Response:
        content_type = request.headers.get("content-type", "application/x-image")
        try:
            check_content_type(content_type)
        except UnsupportedContentTypeError as error:
            return _error(415, str(error))
        accept = request.headers.get("accept", _JSON)
        if not _answers(accept):
            return _error(406, f"Accept type {accept!r} is not supported: the algorithm answers {_JSON}.")
        body = await request.body()
        try:
            prediction = await run_in_threadpool(predictor.predict, body, content_type)
        except InvalidImageError as error:
            return _error(400, f"The request body is {len(body)} bytes of {content_type}: {error}")
        return Response(json.dumps(prediction), media_type=_JSON)

    return Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
        ]
    )


def _answers(accept: str) -> bool:
    """Whether an Accept header allows the algorithm's JSON."""
    ranges = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    return bool(ranges & {_JSON, "application/*", "*/*", ""})


def _error(status: int, message: str) -> Response:
    log.warning("invocation failed (%d): %s", status, message)
    return Response(json.dumps({"code": status, "message": message}), status_code=status, media_type=_JSON)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m local_aws.sagemaker_service.model_server",
        description="Serve the object-detection algorithm's model.tar.gz by SageMaker's serving contract.",
    )
    parser.add_argument("--model-data", type=Path, required=True, help="the model.tar.gz to serve")
    listen = parser.add_mutually_exclusive_group(required=True)
    listen.add_argument("--port", type=int, help="listen on this port of --host (SageMaker's is 8080)")
    listen.add_argument("--fd", type=int, help="serve on this listening socket, inherited from the parent")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--parent-pid", type=int, help="exit when this process is no longer the parent")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.parent_pid is not None:
        exit_with_parent(args.parent_pid)
    threads = os.environ.get(TORCH_THREADS_VARIABLE)
    if threads:
        torch.set_num_threads(int(threads))
    log.info("loading the model from %s", args.model_data)
    try:
        predictor = Predictor.from_artifact(args.model_data)
    except (InvalidModelArtifactError, OSError) as error:
        reason = " ".join(str(error).split())  # one line: the manager reports the last one
        print(f"The model cannot be loaded: {reason}", file=sys.stderr, flush=True)
        sys.exit(1)
    spec = predictor.spec
    log.info(
        "loaded %s with %d classes at image_shape %d on %s",
        spec.base_network,
        spec.num_classes,
        spec.image_shape,
        predictor.device,
    )
    config = uvicorn.Config(
        create_app(predictor), host=args.host, port=args.port or 0, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    sockets = None if args.fd is None else [socket.socket(fileno=args.fd)]
    log.info("serving on %s", f"{args.host}:{args.port}" if sockets is None else sockets[0].getsockname())
    server.run(sockets=sockets)


if __name__ == "__main__":
    main()
