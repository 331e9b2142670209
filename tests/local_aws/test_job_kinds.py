"""Training and transform jobs in the supervisor, with fake engines: each kind has its own workers, and a
training job's statuses follow AWS's through stops and restarts.

The fake engines (``fake_engines``) run in spawned worker processes; they wait for a release file, noting
each start so tests can count attempts.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.job_runner import JOB_KINDS, Supervisor
from local_aws.sagemaker_service.labeling_jobs import LabelingJobStore
from local_aws.sagemaker_service.store import StateDb
from local_aws.sagemaker_service.training_jobs import TrainingJob, TrainingJobStore
from tests.local_aws.detector_jobs import LabeledData, training_request
from tests.local_aws.fake_engines import (
    FAKE_LABELING,
    FAKE_TRAINING,
    labeling_request,
    release,
    starts,
    wait_for,
)

DATA = LabeledData("s3://b/train.manifest", "s3://b/validation.manifest", (), "s3://b/out")


@pytest.fixture
def config(tmp_path: Path) -> LocalAwsConfig:
    return LocalAwsConfig(data_dir=tmp_path)


@pytest.fixture
def training(config: LocalAwsConfig) -> TrainingJobStore:
    return TrainingJobStore(StateDb(config.state_db))


@pytest.fixture
def supervisors(config: LocalAwsConfig) -> Iterator[Callable[..., Supervisor]]:
    started: list[Supervisor] = []

    def start(**options: Any) -> Supervisor:
        engines = {"labeling": FAKE_LABELING, "training": FAKE_TRAINING}
        supervisor = Supervisor(
            config.state_db, config, **({"engines": engines, "poll_interval_s": 0.05} | options)
        )
        supervisor.start()
        started.append(supervisor)
        return supervisor

    yield start
    for supervisor in started:
        supervisor.stop()


def statuses(job: TrainingJob) -> list[str]:
    return [transition["Status"] for transition in job.transitions]


def test_training_and_transform_are_job_kinds_with_engines_imported_only_in_workers() -> None:
    assert JOB_KINDS["training"].engine.run == "local_aws.sagemaker_service.training_engine:run_training_job"
    assert (
        JOB_KINDS["transform"].engine.run == "local_aws.sagemaker_service.transform_engine:run_transform_job"
    )
    code = (
        "import sys, tempfile, pathlib\n"
        "from local_aws.config import LocalAwsConfig\n"
        "from local_aws.sagemaker_service.app import create_app\n"
        "create_app(LocalAwsConfig(data_dir=pathlib.Path(tempfile.mkdtemp())))\n"
        "assert 'torch' not in sys.modules, 'the service imported torch'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_running_labeling_jobs_never_hold_the_workers_of_training_jobs(config, training, supervisors) -> None:
    labeling = LabelingJobStore(StateDb(config.state_db))
    labeling.create(labeling_request("labels", mode="wait"), config)
    supervisor = supervisors(max_workers=1)
    wait_for(labeling, "labels", lambda job: job.status == "InProgress")
    training.create(training_request("first", DATA), config)
    time.sleep(0.01)  # distinct creation times: jobs start oldest first
    training.create(training_request("second", DATA), config)
    wait_for(training, "first", lambda job: job.secondary_status == "Training")
    time.sleep(0.5)
    assert supervisor.running("labeling") == {"labels"}
    assert supervisor.running("training") == {"first"}
    assert training.get("second").secondary_status == "Starting"
    release(config, "first")
    wait_for(training, "second", lambda job: job.secondary_status == "Training")
    for name in ("second", "labels"):
        release(config, name)
    assert wait_for(labeling, "labels", lambda job: job.status != "InProgress").status == "Completed"
    assert wait_for(training, "second", lambda job: job.status != "InProgress").status == "Completed"


def test_a_completed_training_job_records_its_transitions_times_and_metrics(config, training, supervisors):
    training.create(training_request("done", DATA), config)
    supervisors()
    release(config, "done")
    job = wait_for(training, "done", lambda job: job.status == "Completed")
    assert statuses(job) == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert job.transitions[0]["StatusMessage"] == "Preparing the instances for training"
    assert job.transitions[-1]["StartTime"] == job.transitions[-1]["EndTime"] == job.training_end_time
    assert job.creation_time <= job.training_start_time <= job.training_end_time
    assert job.final_metrics == [{"MetricName": "validation:mAP", "Value": 0.25, "Timestamp": 1700000000.5}]
    assert (job.secondary_status, job.failure_reason) == ("Completed", None)


def test_a_stopped_training_job_goes_through_stopping(config, training, supervisors) -> None:
    training.create(training_request("halted", DATA), config)
    supervisors()
    wait_for(training, "halted", lambda job: job.secondary_status == "Training")
    training.request_stop("halted")
    assert (training.get("halted").status, training.get("halted").secondary_status) == (
        "Stopping",
        "Stopping",
    )
    job = wait_for(training, "halted", lambda job: job.status == "Stopped")
    assert statuses(job) == ["Starting", "Downloading", "Training", "Stopping", "Stopped"]
    assert job.training_end_time is not None and job.final_metrics == []


def test_a_training_job_stopped_before_a_worker_took_it_never_started(config, training, supervisors) -> None:
    training.create(training_request("early", DATA), config)
    training.request_stop("early")
    supervisors()
    job = wait_for(training, "early", lambda job: job.status == "Stopped")
    assert statuses(job) == ["Starting", "Stopping", "Stopped"]
    assert (job.training_start_time, job.training_end_time, starts(config, "early")) == (None, None, 0)


def test_a_training_job_interrupted_by_a_restart_trains_again(config, training, supervisors) -> None:
    training.create(training_request("resumed", DATA), config)
    first = supervisors()
    wait_for(training, "resumed", lambda job: job.secondary_status == "Training")
    started = training.get("resumed").training_start_time
    first.stop()
    supervisors()
    job = wait_for(training, "resumed", lambda job: starts(config, "resumed") == 2 and job.attempt == 2)
    release(config, "resumed")
    job = wait_for(training, "resumed", lambda job: job.status == "Completed")
    assert job.training_start_time > started
    assert statuses(job) == [
        "Starting", "Downloading", "Training", "Starting", "Downloading", "Training", "Uploading", "Completed"
    ]  # fmt: skip


def test_an_engine_result_out_of_the_rules_is_refused_and_a_superseded_attempt_ignored(config, training):
    training.create(training_request("fenced", DATA), config)
    old = training.claim("fenced", max_attempts=3)
    new = training.claim("fenced", max_attempts=3)
    training.start("fenced", new)
    training.progress("fenced", old, "Uploading")
    training.finish("fenced", old, {"status": "Completed"})
    assert (training.get("fenced").status, training.get("fenced").secondary_status) == (
        "InProgress",
        "Starting",
    )
    with pytest.raises(ValueError, match="'Completed' with secondary status 'MaxRuntimeExceeded'"):
        training.finish("fenced", new, {"status": "Completed", "secondary_status": "MaxRuntimeExceeded"})
    with pytest.raises(ValueError, match="Downloading, Training or Uploading, not 'Completed'"):
        training.progress("fenced", new, "Completed")
    training.fail("fenced", new, "ClientError: bad")
    job = training.get("fenced")
    assert (job.status, job.secondary_status, job.failure_reason) == ("Failed", "Failed", "ClientError: bad")
