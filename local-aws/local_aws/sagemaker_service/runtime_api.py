"""The SageMaker runtime's InvokeEndpoint: ``POST /endpoints/<name>/invocations``, AWS's REST-JSON protocol.

The body is passed as it is to the endpoint's model server (``POST /invocations`` with the request's
Content-Type and Accept) over a pool of kept-alive connections, and its answer comes back as it is, with the
``x-Amzn-Invoked-Production-Variant`` header. Nothing here touches SQLite on the way of a served request: the
endpoint manager knows in memory where each endpoint serves. The pool is httpcore's, the transport under
httpx, used directly: it adds about half a millisecond less per invocation than ``httpx.AsyncClient``.

Errors, as boto3 parses them for ``sagemaker-runtime``: a missing endpoint, or one not in service, is a
``ValidationError``; an error answer of the model server (an unsupported content type, a body that is not
an image) is a ``ModelError`` (424) with ``OriginalStatusCode``, ``OriginalMessage`` and ``LogStreamArn``;
a body over 6 MB is refused with HTTP 413 and no error type, as AWS does (boto3 reports code ``413``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpcore
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.endpoint_manager import MODEL_SERVER_HOST, EndpointManager, log_group
from local_aws.sagemaker_service.endpoints import EndpointStore

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
INVOCATION_TIMEOUT_S = 60.0
_CONNECT_TIMEOUT_S = 5.0
_TIMEOUTS = {
    "connect": _CONNECT_TIMEOUT_S,
    "read": INVOCATION_TIMEOUT_S,
    "write": INVOCATION_TIMEOUT_S,
    "pool": INVOCATION_TIMEOUT_S,
}
_JSON = "application/json"
_POOL_SIZE = 64
_DEFAULT_CONTENT_TYPE = "application/x-image"
_CONTAINER = "primary"


class RuntimeApi:
    def __init__(self, endpoints: EndpointStore, manager: EndpointManager, config: LocalAwsConfig) -> None:
        self.endpoints = endpoints
        self.manager = manager
        self.config = config
        self._pool: httpcore.AsyncConnectionPool | None = None

    async def start(self) -> None:
        self._pool = httpcore.AsyncConnectionPool(max_connections=_POOL_SIZE)

    async def stop(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()

    async def invoke_endpoint(self, request: Request) -> Response:
        name = request.path_params["name"]
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_PAYLOAD_BYTES:
            return _too_large()
        body = await request.body()
        if len(body) > MAX_PAYLOAD_BYTES:
            return _too_large()
        deployment = self.manager.serving(name)
        if deployment is None:
            return _error(400, "ValidationError", await run_in_threadpool(self._not_serving, name))
        target = request.headers.get("x-amzn-sagemaker-target-variant")
        route = deployment.variant(target)
        if route is None:
            return _error(
                400,
                "ValidationError",
                f"Variant {target} of endpoint {name} of account {self.config.account_id} not found.",
            )
        headers = [("content-type", request.headers.get("content-type", _DEFAULT_CONTENT_TYPE))]
        if "accept" in request.headers:
            headers.append(("accept", request.headers["accept"]))
        assert self._pool is not None, "the runtime is used before the app started"
        url = f"http://{MODEL_SERVER_HOST}:{deployment.port(route)}/invocations"
        try:
            answer = await self._pool.request(
                "POST", url, headers=headers, content=body, extensions={"timeout": _TIMEOUTS}
            )
        except httpcore.TimeoutException:
            return self._model_error(
                name,
                f"Your invocation timed out while waiting for a response from container {_CONTAINER}. Review"
                " the latency metrics for each container in Amazon CloudWatch, resolve the issue, and try"
                " again.",
            )
        except (httpcore.NetworkError, httpcore.ProtocolError) as error:
            self.manager.notify()
            return _error(
                503,
                "ServiceUnavailable",
                f"The model server of endpoint {name} (variant {route.name}) did not answer ({error}); it is"
                " being started again. Retry the request.",
            )
        if answer.status != 200:
            return self._model_error(name, answer.content.decode(errors="replace"), answer.status)
        content_type = next(
            (value.decode() for key, value in answer.headers if key.lower() == b"content-type"), _JSON
        )
        return Response(
            answer.content,
            headers={
                "Content-Type": content_type,
                "x-Amzn-Invoked-Production-Variant": route.name,
                "x-amzn-RequestId": str(uuid.uuid4()),
            },
        )

    def _not_serving(self, name: str) -> str:
        endpoint = self.endpoints.find(name)
        if endpoint is None:
            return f"Endpoint {name} of account {self.config.account_id} not found."
        return (
            f"Endpoint {endpoint.name} of account {self.config.account_id} is {endpoint.status}: it serves"
            " invocations once InService."
        )

    def _model_error(self, name: str, original: str, status: int | None = None) -> Response:
        region, account = self.config.region, self.config.account_id
        group = log_group(name)
        logs_url = (
            f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
            f"#logEventViewer:group={group}"
        )
        if status is None:
            message = f"{original} See {logs_url} in account {account} for more information."
        else:
            side = "client" if 400 <= status < 500 else "server"
            message = (
                f'Received {side} error ({status}) from {_CONTAINER} with message "{original}".'
                f" See {logs_url} in account {account} for more information."
            )
        return _error(
            424,
            "ModelError",
            message,
            OriginalStatusCode=status,
            OriginalMessage=original if status is not None else None,
            LogStreamArn=f"arn:aws:logs:{region}:{account}:log-group:{group}",
        )


def _too_large() -> Response:
    return Response(
        json.dumps({"message": f"HTTP content length exceeded {MAX_PAYLOAD_BYTES} bytes."}),
        status_code=413,
        media_type=_JSON,
        headers={"x-amzn-RequestId": str(uuid.uuid4())},
    )


def _error(status: int, code: str, message: str, **members: Any) -> Response:
    body = {"message": message} | {key: value for key, value in members.items() if value is not None}
    return Response(
        json.dumps(body),
        status_code=status,
        media_type=_JSON,
        headers={"x-amzn-ErrorType": code, "x-amzn-RequestId": str(uuid.uuid4())},
    )
