"""Jobs run in worker processes, never in the request handler; a supervisor thread hands them out.

The supervisor runs in the service process: it polls the SQLite file (and wakes at once when the API
creates or stops a job), starts each waiting job in its own worker process (multiprocessing, "spawn"),
at most ``max_workers`` of each kind at a time, oldest first, and notices workers that end without finishing
their job. Kinds have separate limits because jobs of one kind wait for jobs of another: a labeling job with
automated labeling creates training and transform jobs and waits for them, so running labeling jobs must
never hold the workers those need.

Each kind of job (labeling, training, transform) is a ``JobKind`` in ``JOB_KINDS``: its store
and how a worker calls its engine. The engine itself is named by import path (``Engine``), imported only in
the worker, so the service starts without it and tests can run a fake engine in its place.

Restarts: jobs are resumed. A job found Initializing or InProgress when the service starts is started again
from the beginning in a new attempt (engines are deterministic from the job name and rewrite their
output); a job found Stopping is Stopped. A job that keeps being interrupted fails after ``max_attempts``.
A worker whose service process died exits by itself, and a worker that is no longer its job's latest
attempt cannot write to the job.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Protocol

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.background import ReconcileLoop, exit_with_parent
from local_aws.sagemaker_service.labeling_jobs import LabelingJobStore, execute_labeling_job
from local_aws.sagemaker_service.store import StateDb
from local_aws.sagemaker_service.training_jobs import TrainingJobStore, execute_training_job
from local_aws.sagemaker_service.transform_jobs import TransformJobStore, execute_transform_job

log = logging.getLogger(__name__)

_TERMINATE_WAIT_S = 5


@dataclass(frozen=True)
class Engine:
    """Where a job kind's code lives, as ``module:attribute`` import paths.

    ``run`` does the job; ``failure`` is the exception class (with a ``reason``) by which it fails a job;
    ``check`` vets a create request in the service and raises ValueError for one the stack cannot serve.
    """

    run: str
    failure: str
    check: str | None = None


class JobStore(Protocol):
    """What the supervisor and a worker need from a job kind's store."""

    def waiting(self, running: set[str]) -> list[str]: ...
    def settle_stopping(self, running: set[str]) -> None: ...
    def stop_requested_time(self, name: str) -> float | None: ...
    def claim(self, name: str, max_attempts: int) -> int | None: ...
    def abandon(self, name: str, attempt: int, reason: str) -> None: ...
    def start(self, name: str, attempt: int) -> None: ...
    def finish(self, name: str, attempt: int, result: Mapping[str, Any]) -> None: ...
    def fail(self, name: str, attempt: int, reason: str) -> None: ...


# How a worker calls a kind's engine: (engine's run, store, job name, attempt, config) → the engine's result.
Execute = Callable[[Callable[..., Mapping[str, Any]], Any, str, int, LocalAwsConfig], Mapping[str, Any]]


@dataclass(frozen=True)
class JobKind:
    name: str
    store: Callable[[StateDb], JobStore]
    execute: Execute
    engine: Engine


LABELING_ENGINE = Engine(
    run="local_aws.groundtruth:run_labeling_job",
    failure="local_aws.groundtruth:LabelingJobFailed",
    check="local_aws.groundtruth:check_labeling_job_request",
)
TRAINING_ENGINE = Engine(
    run="local_aws.sagemaker_service.training_engine:run_training_job",
    failure="local_aws.sagemaker_service.training_engine:TrainingJobFailed",
    check="local_aws.sagemaker_service.training_requests:check_training_job_request",
)
TRANSFORM_ENGINE = Engine(
    run="local_aws.sagemaker_service.transform_engine:run_transform_job",
    failure="local_aws.sagemaker_service.transform_engine:TransformJobFailed",
    check="local_aws.sagemaker_service.transform_requests:check_transform_job_request",
)
JOB_KINDS: dict[str, JobKind] = {
    "labeling": JobKind("labeling", LabelingJobStore, execute_labeling_job, LABELING_ENGINE),
    "training": JobKind("training", TrainingJobStore, execute_training_job, TRAINING_ENGINE),
    "transform": JobKind("transform", TransformJobStore, execute_transform_job, TRANSFORM_ENGINE),
}


def load_object(path: str) -> Any:
    """The object a ``module:attribute`` path names."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{path!r} is not a 'module:attribute' import path")
    return getattr(importlib.import_module(module_name), attribute)


@dataclass
class _Worker:
    kind: str
    name: str
    attempt: int
    process: BaseProcess


@dataclass
class Supervisor:
    """Starts waiting jobs in worker processes and keeps their statuses honest."""

    db_path: Path
    config: LocalAwsConfig
    engines: Mapping[str, Engine] = field(default_factory=dict)
    max_workers: int = 2
    poll_interval_s: float = 0.5
    stop_grace_s: float = 60.0
    max_attempts: int = 3
    _workers: dict[tuple[str, str], _Worker] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._loop = ReconcileLoop("job supervisor", self.tick, self.poll_interval_s)
        unknown = set(self.engines) - set(JOB_KINDS)
        if unknown:
            raise ValueError(
                f"engines given for unknown job kinds {sorted(unknown)}; known: {sorted(JOB_KINDS)}"
            )
        self._db = StateDb(self.db_path)
        self._stores = {name: kind.store(self._db) for name, kind in JOB_KINDS.items()}

    def engine(self, kind: str) -> Engine:
        return self.engines.get(kind, JOB_KINDS[kind].engine)

    def start(self) -> None:
        self._loop.start()

    def notify(self) -> None:
        """Look at the jobs now rather than at the next poll."""
        self._loop.notify()

    def stop(self) -> None:
        """Stop handing out jobs and end the workers; their jobs are resumed when the service starts again."""
        self._loop.stop()
        for worker in self._workers.values():
            _end_process(worker.process)
        self._workers.clear()

    def running(self, kind: str) -> set[str]:
        return {name for (worker_kind, name) in list(self._workers) if worker_kind == kind}

    def tick(self) -> None:
        """One round: reap ended workers, settle stop requests, start waiting jobs while there is room."""
        self._reap()
        for kind, store in self._stores.items():
            store.settle_stopping(self.running(kind))
            self._enforce_stop_grace(kind, store)
        for kind, store in self._stores.items():
            for name in store.waiting(self.running(kind)):
                if len(self.running(kind)) >= self.max_workers or self._loop.stopping:
                    break
                self._launch(kind, store, name)

    def _reap(self) -> None:
        for key, worker in list(self._workers.items()):
            if worker.process.is_alive():
                continue
            worker.process.join()
            del self._workers[key]
            if self._loop.stopping or worker.process.exitcode in _ENDED_FROM_OUTSIDE:
                # `local_aws down` signals the service's whole process group: the worker may die before
                # the service knows it is stopping. Such a job was interrupted, not broken: it runs again.
                log.info("%s job %s was interrupted; it runs again", worker.kind, worker.name)
                continue
            self._stores[worker.kind].abandon(
                worker.name,
                worker.attempt,
                f"Internal error: the worker process exited with code {worker.process.exitcode}"
                " before finishing the job.",
            )

    def _enforce_stop_grace(self, kind: str, store: JobStore) -> None:
        """A job asked to stop whose engine does not stop within ``stop_grace_s`` is ended and Stopped."""
        for name in self.running(kind):
            requested = store.stop_requested_time(name)
            if requested is not None and time.time() - requested > self.stop_grace_s:
                worker = self._workers.pop((kind, name))
                _end_process(worker.process)
                store.abandon(name, worker.attempt, "Internal error: the job did not stop when asked.")

    def _launch(self, kind: str, store: JobStore, name: str) -> None:
        attempt = store.claim(name, self.max_attempts)
        if attempt is None:
            return
        context = multiprocessing.get_context("spawn")
        process = context.Process(
            target=run_worker,
            args=(kind, self.engine(kind), self.db_path, self.config, name, attempt, os.getpid()),
            name=f"{kind}-job-{name}",
        )
        process.start()
        self._workers[(kind, name)] = _Worker(kind, name, attempt, process)
        log.info("started %s job %s (attempt %d) in process %d", kind, name, attempt, process.pid)


_ENDED_FROM_OUTSIDE = frozenset({-signal.SIGTERM, -signal.SIGINT, -signal.SIGHUP})


def _end_process(process: BaseProcess) -> None:
    process.terminate()
    process.join(_TERMINATE_WAIT_S)
    if process.is_alive():
        process.kill()
        process.join()


def run_worker(
    kind_name: str,
    engine: Engine,
    db_path: Path,
    config: LocalAwsConfig,
    name: str,
    attempt: int,
    parent_pid: int,
) -> None:
    """A worker process: run one attempt at one job and record how it ended."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is for the service, which ends its workers
    exit_with_parent(parent_pid)
    kind = JOB_KINDS[kind_name]
    store = kind.store(StateDb(db_path))
    try:
        run = load_object(engine.run)
        failure_type = load_object(engine.failure)
    except Exception as error:
        store.fail(name, attempt, f"Internal error: cannot load the {kind_name} engine: {error}")
        return
    store.start(name, attempt)
    try:
        result = kind.execute(run, store, name, attempt, config)
        store.finish(name, attempt, result)
    except failure_type as error:
        store.fail(name, attempt, str(getattr(error, "reason", error)))
    except Exception as error:
        log.exception("%s job %s failed", kind_name, name)
        store.fail(name, attempt, f"Internal error: {type(error).__name__}: {error}")
