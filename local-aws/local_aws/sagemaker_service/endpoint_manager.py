"""Endpoints brought into service: each instance of a production variant is a model server process.

A thread of the service process (started and stopped with the app, like the job supervisor) reconciles
the endpoints in SQLite with the processes it runs: it deploys Creating, Updating and SystemUpdating
endpoints, each in a thread of its own, notices InService endpoints that have no live process (after a
restart of the stack, or when one died) and deploys them again (SystemUpdating until then), and stops the
processes of Deleting endpoints before it drops them.

A deployment, per instance of each variant: download ``ModelDataUrl`` from the stack's S3 into the data
directory, bind a free port, start ``python -m local_aws.sagemaker_service.model_server`` on that socket,
and poll ``GET /ping`` until it answers 200 (in service), or the process ends or the startup timeout passes
(the deployment fails with the process's last stderr line). An update replaces the old processes only once
the new ones answer. Model servers write their output to CloudWatch Logs, ``/aws/sagemaker/Endpoints/<name>``,
stream ``<variant>/<instance id>``, and end when the service process is gone.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from botocore.exceptions import BotoCoreError, ClientError

from local_aws.config import LocalAwsConfig
from local_aws.environment import PACKAGE_PARENT
from local_aws.sagemaker_service.background import ReconcileLoop
from local_aws.sagemaker_service.endpoints import DEPLOYING_STATUSES, Endpoint, EndpointStore, VariantSpec
from local_aws.sagemaker_service.log_store import LogStore
from local_aws.sagemaker_service.store import StateDb

log = logging.getLogger(__name__)

LOG_GROUP_PREFIX = "/aws/sagemaker/Endpoints/"
DEFAULT_STARTUP_TIMEOUT_S = 300.0
# Model servers run beside the service and only it calls them: on loopback, wherever the service listens.
MODEL_SERVER_HOST = "127.0.0.1"
_PING_INTERVAL_S = 0.1
_PING_TIMEOUT_S = 2.0
# How long a deployment waits for S3 to answer at all (connection refused, 5xx) before it fails.
_S3_UNAVAILABLE_WAIT_S = 60.0
_TERMINATE_WAIT_S = 5.0
_TAIL_LINES = 20


class DeploymentCancelled(Exception):
    """The deployment was overtaken (an update, a delete) or the service is stopping."""


class DeploymentFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def log_group(endpoint_name: str) -> str:
    return f"{LOG_GROUP_PREFIX}{endpoint_name}"


def _instance_id() -> str:
    return "i-" + secrets.token_hex(9)[:17]


@dataclass
class ModelServer:
    """One model server process: an instance of a production variant."""

    variant_name: str
    instance_id: str
    port: int
    process: subprocess.Popen[bytes]
    directory: Path
    tail: deque[str]
    pump: threading.Thread

    def alive(self) -> bool:
        return self.process.poll() is None

    def last_line(self) -> str:
        self.pump.join(_TERMINATE_WAIT_S)
        return next((line for line in reversed(self.tail) if line.strip()), "")

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(_TERMINATE_WAIT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.pump.join(_TERMINATE_WAIT_S)
        shutil.rmtree(self.directory, ignore_errors=True)

    def describe(self) -> dict[str, Any]:
        return {
            "variant": self.variant_name,
            "instance_id": self.instance_id,
            "port": self.port,
            "pid": self.process.pid,
        }


@dataclass(frozen=True)
class VariantRoute:
    name: str
    weight: float
    ports: tuple[int, ...]


@dataclass
class Deployment:
    """An endpoint's serving processes; what the runtime forwards invocations to."""

    config_name: str
    servers: list[ModelServer]
    weights: dict[str, float]  # InitialVariantWeight per variant
    routes: tuple[VariantRoute, ...] = field(init=False)
    _turn: itertools.count[int] = field(default_factory=itertools.count, init=False)

    def __post_init__(self) -> None:
        self.routes = tuple(
            VariantRoute(
                name, weight, tuple(server.port for server in self.servers if server.variant_name == name)
            )
            for name, weight in self.weights.items()
        )

    def variant(self, name: str | None) -> VariantRoute | None:
        """The named variant, or one drawn by weight (None: no variant of that name)."""
        if name is not None:
            return next((route for route in self.routes if route.name == name), None)
        if len(self.routes) == 1:
            return self.routes[0]
        return random.choices(self.routes, weights=[route.weight for route in self.routes])[0]

    def port(self, route: VariantRoute) -> int:
        """The variant's instances take turns."""
        return route.ports[next(self._turn) % len(route.ports)]

    def alive(self) -> bool:
        return all(server.alive() for server in self.servers)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@dataclass
class EndpointManager:
    """Runs the endpoints' model servers; ``serving(name)`` is what the runtime forwards to."""

    db_path: Path
    config: LocalAwsConfig
    poll_interval_s: float = 0.5
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S
    _serving: dict[str, Deployment] = field(default_factory=dict, init=False)
    _deploying: dict[str, threading.Thread] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self._loop = ReconcileLoop("endpoint manager", self.tick, self.poll_interval_s)
        self._db = StateDb(self.db_path)
        self.store = EndpointStore(self._db, self.config)
        self.logs = LogStore(self._db)
        self._s3: Any = None

    @property
    def root(self) -> Path:
        return self.config.data_dir / "sagemaker" / "endpoints"

    def start(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)  # model data of processes that no longer run
        self._s3 = self.config.boto3_client("s3")
        self._loop.start()

    def notify(self) -> None:
        self._loop.notify()

    def stop(self) -> None:
        """Stop every model server; InService endpoints are deployed again when the service starts again."""
        self._loop.stop()
        for thread in list(self._deploying.values()):
            thread.join()
        with self._lock:
            deployments = list(self._serving.values())
            self._serving.clear()
        for deployment in deployments:
            deployment.stop()

    def serving(self, name: str) -> Deployment | None:
        return self._serving.get(name.lower())

    def tick(self) -> None:
        for key, thread in list(self._deploying.items()):
            if not thread.is_alive():
                del self._deploying[key]
        endpoints = {endpoint.name.lower(): endpoint for endpoint in self.store.all()}
        for key in set(self._serving) - set(endpoints):
            self._retire(key)
        for key, endpoint in endpoints.items():
            if self._loop.stopping:
                return
            if endpoint.status == "Deleting":
                if key not in self._deploying:
                    self._retire(key)
                    self.store.remove(endpoint.name)
                    log.info("deleted endpoint %s", endpoint.name)
            elif endpoint.status in DEPLOYING_STATUSES:
                if key not in self._deploying:
                    self._start_deployment(endpoint)
            elif endpoint.status == "InService" and key not in self._deploying:
                with self._lock:  # a deployment records InService and its processes under the lock
                    deployment = self._serving.get(key)
                if deployment is None or not deployment.alive():
                    self._relaunch(endpoint, deployment)
            elif endpoint.status == "Failed":
                self._retire(key)

    def _retire(self, key: str) -> None:
        with self._lock:
            deployment = self._serving.pop(key, None)
        if deployment is not None:
            deployment.stop()

    def _relaunch(self, endpoint: Endpoint, deployment: Deployment | None) -> None:
        if deployment is None:
            log.info("endpoint %s has no model server (the service restarted): starting it", endpoint.name)
        else:
            ended = [server for server in deployment.servers if not server.alive()]
            for server in ended:
                self.logs.put_events(
                    log_group(endpoint.name),
                    f"{server.variant_name}/{server.instance_id}",
                    [f"The model server exited with code {server.process.returncode}; it is started again."],
                )
            log.warning("a model server of endpoint %s ended: starting it again", endpoint.name)
            self._retire(endpoint.name.lower())
        self.store.relaunch(endpoint.name)
        self.notify()

    def _start_deployment(self, endpoint: Endpoint) -> None:
        generation = self.store.claim(endpoint.name, endpoint.status)
        if generation is None:
            return
        config_name, variants = endpoint.target()
        thread = threading.Thread(
            target=self._deploy,
            args=(endpoint.name, generation, config_name, variants),
            name=f"deploy-{endpoint.name}",
            daemon=True,
        )
        self._deploying[endpoint.name.lower()] = thread
        thread.start()

    def _still_wanted(self, name: str, generation: int) -> bool:
        if self._loop.stopping:
            return False
        endpoint = self.store.find(name)
        return endpoint is not None and endpoint.generation == generation and endpoint.status != "Deleting"

    def _deploy(self, name: str, generation: int, config_name: str, variants: list[VariantSpec]) -> None:
        """Start every instance of every variant and wait until they answer; record the outcome."""
        servers: list[ModelServer] = []

        def check() -> None:
            if not self._still_wanted(name, generation):
                raise DeploymentCancelled

        try:
            for variant in variants:
                for _ in range(variant.instance_count):
                    servers.append(self._start_server(name, variant, check))
            weights = {variant.variant_name: variant.initial_weight for variant in variants}
            deployment = Deployment(config_name, servers, weights)
            with self._lock:
                recorded = self.store.deployed(name, generation, [server.describe() for server in servers])
                previous = self._serving.pop(name.lower(), None) if recorded else None
                if recorded:
                    self._serving[name.lower()] = deployment
            if not recorded:
                deployment.stop()
                return
            log.info("endpoint %s is in service on %s", name, config_name)
            if previous is not None:
                previous.stop()
        except DeploymentCancelled:
            for server in servers:
                server.stop()
        except DeploymentFailed as failure:
            for server in servers:
                server.stop()
            log.warning("endpoint %s: deploying %s failed: %s", name, config_name, failure.reason)
            self.store.deployment_failed(name, generation, failure.reason)
        except Exception as error:
            for server in servers:
                server.stop()
            log.exception("endpoint %s: deploying %s failed", name, config_name)
            self.store.deployment_failed(name, generation, f"Internal error: {type(error).__name__}: {error}")
        finally:
            self.notify()

    def _start_server(self, name: str, variant: VariantSpec, check: Callable[[], None]) -> ModelServer:
        instance_id = _instance_id()
        stream = f"{variant.variant_name}/{instance_id}"
        directory = self.root / name.lower() / f"{variant.variant_name}-{instance_id}"
        directory.mkdir(parents=True, exist_ok=True)
        try:
            model_data = self._download(variant, directory / "model.tar.gz")
        except DeploymentFailed as failure:
            self.logs.put_events(log_group(name), stream, [failure.reason])
            shutil.rmtree(directory, ignore_errors=True)
            raise
        check()
        server = self._launch(name, variant, instance_id, directory, model_data)
        try:
            self._await_ping(server, variant, check)
        except BaseException:
            server.stop()
            raise
        return server

    def _download(self, variant: VariantSpec, target: Path) -> Path:
        """The model data, waiting out an S3 that is not answering yet (the stack starting with it)."""
        bucket, _, key = variant.model_data_url.removeprefix("s3://").partition("/")
        deadline = time.monotonic() + _S3_UNAVAILABLE_WAIT_S
        while True:
            try:
                self._s3.download_file(bucket, key, str(target))
                return target
            except Exception as error:
                if _s3_unavailable(error) and time.monotonic() < deadline:
                    time.sleep(1.0)
                    continue
                failure = error
                break
        raise DeploymentFailed(
            f"Failed to download model data (bucket: {bucket}, key: {key}) for production variant"
            f" {variant.variant_name}: {failure}. Please ensure that there is an object located at the URL"
            " and that the role passed to CreateModel has permissions to download the model."
        ) from None

    def _launch(
        self, name: str, variant: VariantSpec, instance_id: str, directory: Path, model_data: Path
    ) -> ModelServer:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # As servers do: connections the process leaves half-closed when it ends do not hold the port.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((MODEL_SERVER_HOST, 0))
            listener.listen(128)
            port = listener.getsockname()[1]
            python_path = [str(PACKAGE_PARENT), os.environ.get("PYTHONPATH")]
            environment = os.environ | {
                "PYTHONPATH": os.pathsep.join(filter(None, python_path)),
                "PYTHONUNBUFFERED": "1",
            }
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "local_aws.sagemaker_service.model_server",
                    "--model-data",
                    str(model_data),
                    "--fd",
                    str(listener.fileno()),
                    "--parent-pid",
                    str(os.getpid()),
                ],
                pass_fds=(listener.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=environment,
            )
        finally:
            listener.close()  # the process holds the port now; it is free again when the process ends
        tail: deque[str] = deque(maxlen=_TAIL_LINES)
        stream = f"{variant.variant_name}/{instance_id}"
        pump = threading.Thread(
            target=self._pump_output,
            args=(process, log_group(name), stream, tail),
            name=f"model-server-log-{name}",
            daemon=True,
        )
        pump.start()
        log.info("endpoint %s: model server %s started (pid %d, port %d)", name, stream, process.pid, port)
        return ModelServer(variant.variant_name, instance_id, port, process, directory, tail, pump)

    def _pump_output(
        self, process: subprocess.Popen[bytes], group: str, stream: str, tail: deque[str]
    ) -> None:
        """The process's output, line by line, into its log stream (and the tail kept for failures)."""
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            tail.append(line)
            try:
                self.logs.put_events(group, stream, [line])
            except Exception:
                log.exception("cannot write a log line of %s", stream)

    def _await_ping(self, server: ModelServer, variant: VariantSpec, check: Callable[[], None]) -> None:
        timeout = variant.startup_timeout_s or self.startup_timeout_s
        deadline = time.monotonic() + timeout
        url = f"http://{MODEL_SERVER_HOST}:{server.port}/ping"
        with httpx.Client(timeout=_PING_TIMEOUT_S) as client:
            while True:
                if not server.alive():
                    raise _ping_failure(
                        variant,
                        f": the model server exited with code {server.process.returncode}:"
                        f" {server.last_line().rstrip('.')}",
                    )
                try:
                    if client.get(url).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                check()
                if time.monotonic() > deadline:
                    raise _ping_failure(variant, f" within {timeout:g} seconds")
                time.sleep(_PING_INTERVAL_S)


def _s3_unavailable(error: Exception) -> bool:
    """Whether ``error`` says S3 is not answering (yet), rather than that the object cannot be had."""
    if isinstance(error, ClientError):
        return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)) >= 500
    return isinstance(error, BotoCoreError)


def _ping_failure(variant: VariantSpec, detail: str) -> DeploymentFailed:
    """AWS's FailureReason for a container that does not answer ``/ping``, with what the stack knows."""
    return DeploymentFailed(
        f"The primary container for production variant {variant.variant_name} did not pass the ping health"
        f" check{detail}. Please check CloudWatch logs for this endpoint."
    )
