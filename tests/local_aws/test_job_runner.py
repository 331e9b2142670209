"""The job supervisor and its worker processes, with a fake labeling engine in place of the real one.

The fake engine (``fake_engines.fake_labeling``) runs in a spawned worker process; what it does is chosen
by the job's "mode" tag, and it notes each start in a file so tests can count attempts.
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
from local_aws.sagemaker_service.embedded import EmbeddedService
from local_aws.sagemaker_service.job_runner import JOB_KINDS, Engine, Supervisor
from local_aws.sagemaker_service.labeling_jobs import LabelingJob, LabelingJobStore
from local_aws.sagemaker_service.log_store import LogStore
from local_aws.sagemaker_service.store import StateDb
from tests.local_aws.fake_engines import FAKE_LABELING, labeling_request, release, starts, wait_for
from tests.local_aws.ports import free_port


@pytest.fixture
def config(tmp_path: Path) -> LocalAwsConfig:
    return LocalAwsConfig(data_dir=tmp_path, sagemaker_port=free_port())


@pytest.fixture
def store(config: LocalAwsConfig) -> LabelingJobStore:
    return LabelingJobStore(StateDb(config.state_db))


@pytest.fixture
def supervisors(config: LocalAwsConfig) -> Iterator[Callable[..., Supervisor]]:
    """Start supervisors with the fake engine; all are stopped after the test."""
    started: list[Supervisor] = []

    def start(**options: Any) -> Supervisor:
        options = {"engines": {"labeling": FAKE_LABELING}, "poll_interval_s": 0.05} | options
        supervisor = Supervisor(config.state_db, config, **options)
        supervisor.start()
        started.append(supervisor)
        return supervisor

    yield start
    for supervisor in started:
        supervisor.stop()


def wait_for_status(store: LabelingJobStore, name: str, *statuses: str) -> LabelingJob:
    return wait_for(store, name, lambda job: job.status in statuses)


def test_a_job_goes_from_initializing_through_in_progress_to_completed(config, store, supervisors):
    store.create(labeling_request("birds", mode="wait"), config)
    assert store.get("birds").status == "Initializing"
    supervisors()
    job = wait_for(store, "birds", lambda job: job.counters["Unlabeled"] == 4)
    assert job.status == "InProgress"
    release(config, "birds")
    job = wait_for_status(store, "birds", "Completed")
    assert job.counters == {
        "TotalLabeled": 4,
        "HumanLabeled": 4,
        "MachineLabeled": 0,
        "FailedNonRetryableError": 0,
        "Unlabeled": 0,
    }
    assert job.output_dataset_s3_uri == "s3://bucket/out/birds/manifests/output/output.manifest"
    assert job.failure_reason is None
    assert job.last_modified_time >= job.creation_time
    assert starts(config, "birds") == 1


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("fail", "ClientError: the input manifest is malformed"),
        ("crash", "Internal error: RuntimeError: boom"),
        ("exit", "Internal error: the worker process exited with code 3 before finishing the job."),
        ("bad-result", "Internal error: ValueError: the engine returned status 'Weird'"),
    ],
)
def test_a_failing_engine_fails_the_job_with_a_reason(config, store, supervisors, mode, reason):
    store.create(labeling_request(f"job-{mode}", mode=mode), config)
    supervisors()
    job = wait_for_status(store, f"job-{mode}", "Failed", "Completed")
    assert job.status == "Failed"
    assert job.failure_reason is not None
    assert job.failure_reason.startswith(reason)
    assert job.output_dataset_s3_uri is None


def test_an_engine_that_cannot_be_imported_fails_the_job(config, store, supervisors):
    store.create(labeling_request("lost"), config)
    supervisors(engines={"labeling": Engine(run="no_such_module:run", failure="builtins:RuntimeError")})
    job = wait_for_status(store, "lost", "Failed")
    assert job.failure_reason.startswith("Internal error: cannot load the labeling engine:")
    assert "no_such_module" in job.failure_reason


def test_no_more_jobs_run_at_once_than_the_supervisor_allows(config, store, supervisors):
    for name in ("first", "second", "third"):
        store.create(labeling_request(name, mode="wait"), config)
        time.sleep(0.01)  # distinct creation times: jobs start oldest first
    supervisor = supervisors(max_workers=2)
    wait_for_status(store, "first", "InProgress")
    wait_for_status(store, "second", "InProgress")
    time.sleep(0.5)
    assert store.get("third").status == "Initializing"
    assert supervisor.running("labeling") == {"first", "second"}
    release(config, "first")
    wait_for_status(store, "first", "Completed")
    wait_for_status(store, "third", "InProgress")
    for name in ("second", "third"):
        release(config, name)
        wait_for_status(store, name, "Completed")


def test_a_stop_request_stops_a_running_job(config, store, supervisors):
    store.create(labeling_request("stop-me", mode="wait"), config)
    supervisors()
    wait_for_status(store, "stop-me", "InProgress")
    assert store.request_stop("stop-me").status == "Stopping"
    job = wait_for_status(store, "stop-me", "Stopped")
    assert job.counters["TotalLabeled"] == 1
    assert job.stop_requested_time is not None


def test_a_job_stopped_before_a_worker_took_it_is_stopped_without_running(config, store, supervisors):
    store.create(labeling_request("busy", mode="wait"), config)
    store.create(labeling_request("queued", mode="quick"), config)
    supervisors(max_workers=1)
    wait_for_status(store, "busy", "InProgress")
    store.request_stop("queued")
    wait_for_status(store, "queued", "Stopped")
    assert starts(config, "queued") == 0
    release(config, "busy")
    wait_for_status(store, "busy", "Completed")


def test_an_engine_that_ignores_a_stop_request_is_ended_after_the_grace_period(config, store, supervisors):
    store.create(labeling_request("stubborn", mode="ignore-stop"), config)
    supervisors(stop_grace_s=0.3)
    wait_for_status(store, "stubborn", "InProgress")
    store.request_stop("stubborn")
    job = wait_for_status(store, "stubborn", "Stopped")
    assert job.failure_reason is None


def test_a_job_interrupted_by_a_restart_is_started_again(config, store, supervisors):
    store.create(labeling_request("interrupted", mode="wait"), config)
    first = supervisors()
    wait_for_status(store, "interrupted", "InProgress")
    first.stop()
    assert store.get("interrupted").status == "InProgress"
    supervisors()
    job = wait_for(store, "interrupted", lambda job: starts(config, "interrupted") == 2)
    assert job.status == "InProgress"
    assert job.attempt == 2
    release(config, "interrupted")
    assert wait_for_status(store, "interrupted", "Completed").attempt == 2


def test_a_worker_terminated_from_outside_is_run_again_not_failed(config, store, supervisors):
    # As when `local_aws down` signals the service's process group and the worker dies first.
    store.create(labeling_request("signalled", mode="terminated-once"), config)
    supervisors()
    job = wait_for_status(store, "signalled", "Completed", "Failed")
    assert (job.status, job.failure_reason, starts(config, "signalled")) == ("Completed", None, 2)


def test_a_job_stopping_when_the_service_ended_is_stopped_at_the_next_start(config, store, supervisors):
    store.create(labeling_request("halting", mode="wait"), config)
    first = supervisors()
    wait_for_status(store, "halting", "InProgress")
    first.stop()
    store.request_stop("halting")
    supervisors()
    wait_for_status(store, "halting", "Stopped")
    assert starts(config, "halting") == 1


def test_a_job_interrupted_too_often_fails_instead_of_running_again(config, store, supervisors):
    store.create(labeling_request("unlucky"), config)
    for _ in range(3):
        store.claim("unlucky", max_attempts=3)
    supervisors(max_attempts=3)
    job = wait_for_status(store, "unlucky", "Failed")
    assert "started 3 times" in job.failure_reason
    assert starts(config, "unlucky") == 0


def test_a_superseded_attempt_can_neither_report_nor_finish(config, store):
    store.create(labeling_request("fenced"), config)
    old = store.claim("fenced", max_attempts=3)
    new = store.claim("fenced", max_attempts=3)
    assert store.should_stop("fenced", old)
    assert not store.should_stop("fenced", new)
    store.report("fenced", old, "InProgress", {"TotalLabeled": 3})
    store.finish("fenced", old, {"status": "Completed", "counters": {}, "output_dataset_s3_uri": "s3://b/o"})
    job = store.get("fenced")
    assert (job.status, job.counters["TotalLabeled"], job.output_dataset_s3_uri) == ("Initializing", 0, None)
    with pytest.raises(ValueError, match="Completed"):
        store.report("fenced", new, "Completed", {})
    with pytest.raises(ValueError, match="Bogus"):
        store.report("fenced", new, "InProgress", {"Bogus": 1})


def test_a_resumed_attempt_never_shows_counters_going_back(config, store):
    store.create(labeling_request("resumed"), config)
    interrupted = store.claim("resumed", max_attempts=3)
    store.report(
        "resumed", interrupted, "InProgress", {"TotalLabeled": 20, "HumanLabeled": 20, "Unlabeled": 80}
    )
    resumed = store.claim("resumed", max_attempts=3)
    store.report("resumed", resumed, "InProgress", {"TotalLabeled": 10, "HumanLabeled": 10, "Unlabeled": 90})
    assert store.get("resumed").counters["TotalLabeled"] == 20
    store.report("resumed", resumed, "InProgress", {"TotalLabeled": 30, "HumanLabeled": 30, "Unlabeled": 70})
    assert store.get("resumed").counters == {
        "TotalLabeled": 30,
        "HumanLabeled": 30,
        "MachineLabeled": 0,
        "FailedNonRetryableError": 0,
        "Unlabeled": 70,
    }


def test_unknown_job_kinds_in_engines_are_refused(config):
    with pytest.raises(ValueError, match="hosting"):
        Supervisor(config.state_db, config, engines={"hosting": FAKE_LABELING})


def test_the_real_engine_is_imported_only_in_workers():
    assert JOB_KINDS["labeling"].engine.run == "local_aws.groundtruth:run_labeling_job"
    assert JOB_KINDS["labeling"].engine.failure == "local_aws.groundtruth:LabelingJobFailed"
    code = (
        "import sys, tempfile, pathlib\n"
        "from local_aws.config import LocalAwsConfig\n"
        "from local_aws.sagemaker_service.app import create_app\n"
        "create_app(LocalAwsConfig(data_dir=pathlib.Path(tempfile.mkdtemp())))\n"
        "assert 'local_aws.groundtruth' not in sys.modules, 'imported the engine'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_a_restarted_service_keeps_its_jobs_and_logs_and_resumes_an_interrupted_job(config):
    sagemaker_options = {"engines": {"labeling": FAKE_LABELING}, "poll_interval_s": 0.05}
    with EmbeddedService(config, **sagemaker_options):
        sagemaker = config.boto3_client("sagemaker")
        sagemaker.create_labeling_job(**labeling_request("done"))
        arn = sagemaker.create_labeling_job(**labeling_request("long", mode="wait"))["LabelingJobArn"]
        LogStore(config.state_db).put_events("/aws/sagemaker/LabelingJobs", "long", ["started", "working"])
        store = LabelingJobStore(StateDb(config.state_db))
        wait_for_status(store, "done", "Completed")
        wait_for_status(store, "long", "InProgress")
        before = sagemaker.describe_labeling_job(LabelingJobName="done")

    restarted = LocalAwsConfig(data_dir=config.data_dir, sagemaker_port=free_port())
    with EmbeddedService(restarted, **sagemaker_options):
        sagemaker = restarted.boto3_client("sagemaker")
        after = sagemaker.describe_labeling_job(LabelingJobName="done")
        assert {key: value for key, value in after.items() if key != "ResponseMetadata"} == {
            key: value for key, value in before.items() if key != "ResponseMetadata"
        }
        wait_for(store, "long", lambda job: starts(config, "long") == 2)
        assert sagemaker.describe_labeling_job(LabelingJobName="long")["LabelingJobStatus"] == "InProgress"
        release(config, "long")
        wait_for_status(store, "long", "Completed")
        described = sagemaker.describe_labeling_job(LabelingJobName="long")
        assert described["LabelingJobArn"] == arn
        assert described["LabelingJobOutput"]["OutputDatasetS3Uri"].endswith(
            "/long/manifests/output/output.manifest"
        )
        events = restarted.boto3_client("logs").get_log_events(
            logGroupName="/aws/sagemaker/LabelingJobs", logStreamName="long", startFromHead=True
        )["events"]
        assert [event["message"] for event in events] == ["started", "working"]
