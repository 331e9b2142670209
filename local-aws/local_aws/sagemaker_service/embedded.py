"""The service on uvicorn in a background thread of the calling process: for tests and notebooks.

    with EmbeddedService(config) as service:
        sagemaker = config.boto3_client("sagemaker")

Its jobs still run in worker processes. Leaving the block stops the server and its workers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import uvicorn

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.app import create_app
from local_aws.sagemaker_service.job_runner import Engine

_START_TIMEOUT_S = 20


class EmbeddedService:
    def __init__(
        self, config: LocalAwsConfig, *, engines: Mapping[str, Engine] | None = None, **app_options: Any
    ):
        self.config = config
        app = create_app(config, engines=engines, **app_options)
        self._server = uvicorn.Server(
            uvicorn.Config(app, host=config.bind_host, port=config.sagemaker_port, log_level="warning")
        )
        self._thread = threading.Thread(target=self._server.run, name="sagemaker-service", daemon=True)

    @property
    def endpoint(self) -> str:
        return self.config.sagemaker_endpoint

    def __enter__(self) -> EmbeddedService:
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the local SageMaker service did not start on {self.endpoint}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the local SageMaker service did not start within {_START_TIMEOUT_S} s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
