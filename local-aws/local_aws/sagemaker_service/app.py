"""The local SageMaker service's HTTP app: SageMaker and CloudWatch Logs over AWS's JSON 1.1 protocol.

``POST /`` with ``X-Amz-Target: SageMaker.<Operation>`` or ``Logs_20140328.<Operation>`` (the target prefixes
of botocore's models); ``POST /endpoints/<name>/invocations`` is the SageMaker runtime's InvokeEndpoint
(REST-JSON), forwarded to the endpoint's model server; ``GET /_local/health`` answers ``{"status": "ok"}``
once the service is up. Handlers run in Starlette's thread pool (SQLite calls block); jobs run in worker
processes started by the supervisor, and endpoints in model server processes started by the endpoint
manager, both of which start and stop with the app.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.endpoint_manager import EndpointManager
from local_aws.sagemaker_service.endpoints import EndpointConfigStore, EndpointStore
from local_aws.sagemaker_service.errors import ApiError
from local_aws.sagemaker_service.hosting_api import HostingApi
from local_aws.sagemaker_service.job_runner import Engine, Supervisor
from local_aws.sagemaker_service.labeling_api import LabelingApi
from local_aws.sagemaker_service.labeling_jobs import LabelingJobStore
from local_aws.sagemaker_service.log_store import LogStore
from local_aws.sagemaker_service.logs_api import LogsApi
from local_aws.sagemaker_service.models import ModelStore
from local_aws.sagemaker_service.protocol import (
    JSON_CONTENT_TYPE,
    Handler,
    Service,
    parse_body,
    parse_target,
    service_model,
    shape_output,
    validate_input,
)
from local_aws.sagemaker_service.runtime_api import RuntimeApi
from local_aws.sagemaker_service.store import StateDb
from local_aws.sagemaker_service.training_api import TrainingApi
from local_aws.sagemaker_service.training_jobs import TrainingJobStore
from local_aws.sagemaker_service.transform_api import TransformApi
from local_aws.sagemaker_service.transform_jobs import TransformJobStore
from local_aws.sagemaker_service.workforce_api import WorkforceApi
from local_aws.workforce.teams import WorkforceStore, WorkteamStore

log = logging.getLogger(__name__)


class Dispatcher:
    """Routes a target to its handler: parse, validate against the model, handle, shape the output."""

    def __init__(self, services: Mapping[str, Service], handlers: Mapping[tuple[str, str], Handler]) -> None:
        self.services = services
        self.handlers = handlers

    def dispatch(self, target: str | None, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            service, operation = parse_target(target, self.services)
            handler = self.handlers.get((service.name, operation.name))
            if handler is None:
                raise ApiError(
                    "UnknownOperationException",
                    f"{target} is an AWS operation that the local stack does not serve.",
                )
            params = parse_body(body)
            validate_input(service, operation, params)
            return 200, shape_output(operation.output_shape, handler(params) or {})
        except ApiError as error:
            return error.status, error.body()
        except Exception as error:
            log.exception("%s failed", target)
            return 500, {
                "__type": "InternalFailure",
                "message": f"Internal error: {type(error).__name__}: {error}",
            }


def create_app(
    config: LocalAwsConfig | None = None,
    *,
    engines: Mapping[str, Engine] | None = None,
    max_workers: int = 2,
    poll_interval_s: float = 0.5,
) -> Starlette:
    """The app for ``config``; ``engines`` replaces job kinds' engines (tests run fakes this way)."""
    config = config or LocalAwsConfig()
    db = StateDb(config.state_db)
    supervisor = Supervisor(
        config.state_db,
        config,
        engines=dict(engines or {}),
        max_workers=max_workers,
        poll_interval_s=poll_interval_s,
    )
    services = {
        service.target_prefix: service
        for service in (
            Service("sagemaker", service_model("sagemaker"), "ValidationException"),
            Service("logs", service_model("logs"), "InvalidParameterException"),
        )
    }
    labeling = LabelingApi(LabelingJobStore(db), config, supervisor.engine("labeling"), supervisor.notify)
    logs = LogsApi(LogStore(db), config)
    handlers = {("sagemaker", name): handler for name, handler in labeling.handlers().items()}
    handlers |= {("logs", name): handler for name, handler in logs.handlers().items()}
    training = TrainingApi(TrainingJobStore(db), config, supervisor.engine("training"), supervisor.notify)
    transform = TransformApi(
        TransformJobStore(db),
        ModelStore(db, config),
        config,
        supervisor.engine("transform"),
        supervisor.notify,
    )
    for jobs_api in (training, transform):
        handlers |= {("sagemaker", name): handler for name, handler in jobs_api.handlers().items()}
    endpoint_manager = EndpointManager(config.state_db, config, poll_interval_s=poll_interval_s)
    endpoints = EndpointStore(db, config)
    hosting = HostingApi(
        ModelStore(db, config), EndpointConfigStore(db, config), endpoints, config, endpoint_manager.notify
    )
    handlers |= {("sagemaker", name): handler for name, handler in hosting.handlers().items()}
    workforce = WorkforceApi(WorkforceStore(db, config), WorkteamStore(db, config), config)
    handlers |= {("sagemaker", name): handler for name, handler in workforce.handlers().items()}
    runtime = RuntimeApi(endpoints, endpoint_manager, config)
    dispatcher = Dispatcher(services, handlers)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def aws_json(request: Request) -> Response:
        body = await request.body()
        status, payload = await run_in_threadpool(
            dispatcher.dispatch, request.headers.get("x-amz-target"), body
        )
        headers = {"x-amzn-RequestId": str(uuid.uuid4())}
        if status != 200:
            headers["x-amzn-ErrorType"] = payload["__type"]
        return Response(
            json.dumps(payload), status_code=status, media_type=JSON_CONTENT_TYPE, headers=headers
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        supervisor.start()
        endpoint_manager.start()
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()
            await run_in_threadpool(endpoint_manager.stop)
            await run_in_threadpool(supervisor.stop)

    return Starlette(
        routes=[
            Route("/_local/health", health, methods=["GET"]),
            Route("/", aws_json, methods=["POST"]),
            Route("/endpoints/{name}/invocations", runtime.invoke_endpoint, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
