"""``python -m local_aws`` end to end: a real stack on free ports in a tmp data dir, used as a user would."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import botocore.session
import pytest

from ground_truth_pipeline.steps import label_step, train_step
from local_aws.config import LocalAwsConfig
from local_aws.environment import ENDPOINT_VARIABLES, stack_variables
from tests.local_aws.conftest import REPO_ROOT, LocalStack, process_alive, stack_config

SERVICES = (
    "S3 (SeaweedFS)",
    "SNS/SQS/IAM/STS (moto)",
    "SageMaker/Logs (local service)",
    "Worker portal (private teams)",
)
PID_FILES = dict(zip(SERVICES, ("seaweedfs", "moto", "sagemaker", "portal"), strict=True))
AWS_CLI = Path(sys.executable).parent / "aws"
# An unmodified boto3 program: no endpoint, key or region in the code.
BOTO3_PROGRAM = """
import json, os
import boto3

s3 = boto3.client("s3")
s3.create_bucket(Bucket="cli-test-env-bucket")
s3.put_object(Bucket="cli-test-env-bucket", Key="greeting.txt", Body=b"hello from boto3")
names = ("logs", "sagemaker", "sagemaker-runtime", "sns", "sqs", "iam", "sts")
clients = {name: boto3.client(name) for name in names}
print(json.dumps({
    "object": s3.get_object(Bucket="cli-test-env-bucket", Key="greeting.txt")["Body"].read().decode(),
    "endpoints": {name: client.meta.endpoint_url for name, client in clients.items()},
    "region": clients["sts"].meta.region_name,
    "account": clients["sts"].get_caller_identity()["Account"],
    "log_groups": clients["logs"].describe_log_groups()["logGroups"],
    "topic": clients["sns"].create_topic(Name="cli-test-env-topic")["TopicArn"],
    "connection": json.loads(os.environ["AIRFLOW_CONN_AWS_DEFAULT"]),
}))
"""
AIRFLOW_PROGRAM = """
import json
from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

names = ("s3", "sagemaker", "logs", "sns")
clients = {name: AwsBaseHook(aws_conn_id="aws_default", client_type=name).get_conn() for name in names}
print(json.dumps({
    "endpoints": {name: client.meta.endpoint_url for name, client in clients.items()},
    "buckets": [bucket["Name"] for bucket in clients["s3"].list_buckets()["Buckets"]],
}))
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """This module's own stack, for tests that restart or seed it (``local_stack`` is shared)."""
    started = LocalStack(stack_config(tmp_path_factory.mktemp("cli-stack")))
    started.up()
    try:
        yield started
    finally:
        started.down(timeout_s=2)


@pytest.fixture
def idle_stack(tmp_path: Path) -> LocalStack:
    """A stack that is not running: its own data dir and free ports."""
    return LocalStack(stack_config(tmp_path / "data"))


def listening_hosts(port: int) -> set[str]:
    """The addresses that sockets listen on at ``port`` (from /proc/net/tcp and tcp6); "::" is every
    address, IPv4 included (Go's servers listen there when asked for 0.0.0.0)."""
    hosts = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            local_address, state = line.split()[1], line.split()[3]
            address, port_hex = local_address.split(":")
            if state != "0A" or int(port_hex, 16) != port:
                continue
            if table == "tcp":
                hosts.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
            else:
                hosts.add("::" if int(address, 16) == 0 else "an IPv6 address")
    return hosts


@contextmanager
def serving(stack: LocalStack, **extra: str) -> Iterator[subprocess.Popen[str]]:
    """``python -m local_aws serve`` in the background, given once every service answers; killed, and the
    stack stopped, if it still runs at the end."""
    process = subprocess.Popen(
        [sys.executable, "-m", "local_aws", "serve"],
        cwd=REPO_ROOT,
        env=stack.environment(**extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while stack.cli("status").returncode != 0:
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "serve did not bring the stack up in 90 s"
            time.sleep(1)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        stack.down(timeout_s=2)


def pids(stack: LocalStack) -> dict[str, int]:
    return {path.stem: json.loads(path.read_text())["pid"] for path in stack.config.pids_dir.glob("*.pid")}


def test_up_again_starts_nothing_new(stack: LocalStack) -> None:
    before = pids(stack)
    result = stack.up()

    assert pids(stack) == before and set(before) == set(PID_FILES.values())
    for description in SERVICES:
        assert f"{description}: already running" in result.stdout
    assert "started" not in result.stdout


def test_status_shows_every_service_answering(stack: LocalStack) -> None:
    result = stack.cli("status")

    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    assert len(lines) == len(SERVICES)
    for line, description in zip(lines, SERVICES, strict=True):
        assert line.startswith(description) and "running" in line and line.endswith(" answering")
    for pid in pids(stack).values():
        assert f"pid {pid} " in result.stdout


def test_an_unmodified_boto3_program_uses_the_stack_after_eval_env(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    program = tmp_path / "program.py"
    program.write_text(BOTO3_PROGRAM)
    shell = f'eval "$({sys.executable} -m local_aws env)" && {sys.executable} {program}'

    result = subprocess.run(
        ["bash", "-c", shell],
        cwd=REPO_ROOT,
        env=local_stack.environment(),
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    config = local_stack.config
    assert seen["object"] == "hello from boto3"
    assert seen["endpoints"] == {
        "logs": config.sagemaker_endpoint,
        "sagemaker": config.sagemaker_endpoint,
        "sagemaker-runtime": config.sagemaker_endpoint,
        "sns": config.moto_endpoint,
        "sqs": config.moto_endpoint,
        "iam": config.moto_endpoint,
        "sts": config.moto_endpoint,
    }
    assert (seen["region"], seen["account"]) == ("us-east-1", "123456789012")
    assert isinstance(seen["log_groups"], list)
    assert seen["topic"] == "arn:aws:sns:us-east-1:123456789012:cli-test-env-topic"
    assert seen["connection"]["extra"]["service_config"]["s3"]["endpoint_url"] == config.s3_endpoint


def test_the_aws_cli_works_with_only_the_env_variables(local_stack: LocalStack, tmp_path: Path) -> None:
    environment = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **stack_variables(local_stack.config)}
    upload = tmp_path / "report.txt"
    upload.write_text("written by the AWS CLI\n")

    def aws(*arguments: str) -> str:
        result = subprocess.run(
            [str(AWS_CLI), *arguments], env=environment, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"aws {' '.join(arguments)}: {result.stderr}"
        return result.stdout

    aws("s3", "mb", "s3://cli-test-bucket")
    aws("s3", "cp", str(upload), "s3://cli-test-bucket/reports/report.txt")
    listing = aws("s3", "ls", "s3://cli-test-bucket/reports/")
    downloaded = aws("s3", "cp", "s3://cli-test-bucket/reports/report.txt", "-")
    identity = json.loads(aws("sts", "get-caller-identity"))

    assert listing.split()[-2:] == [str(len(upload.read_bytes())), "report.txt"]
    assert downloaded == "written by the AWS CLI\n"
    assert identity["Account"] == "123456789012"


def test_the_airflow_connection_alone_points_the_amazon_provider_at_the_stack(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    environment = {
        name: value
        for name, value in local_stack.client_environment().items()
        if not name.startswith("AWS_ENDPOINT")
    }
    environment["AIRFLOW_HOME"] = str(tmp_path / "airflow")
    local_stack.config.boto3_client("s3").create_bucket(Bucket="cli-test-airflow-bucket")

    result = subprocess.run(
        [sys.executable, "-c", AIRFLOW_PROGRAM], env=environment, capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.splitlines()[-1])
    config = local_stack.config
    assert seen["endpoints"] == {
        "s3": config.s3_endpoint,
        "sagemaker": config.sagemaker_endpoint,
        "logs": config.sagemaker_endpoint,
        "sns": config.moto_endpoint,
    }
    assert "cli-test-airflow-bucket" in seen["buckets"]


def test_messages_prints_what_was_published_to_a_topic(local_stack: LocalStack) -> None:
    sns = local_stack.config.boto3_client("sns")
    topic = sns.create_topic(Name="cli-test-alerts")["TopicArn"]
    sns.publish(TopicArn=topic, Subject="Task failed", Message="train_model failed: out of memory")
    sns.publish(TopicArn=topic, Message="second alert")

    text = local_stack.cli("messages", "--topic-arn", topic)
    as_json = local_stack.cli("messages", "--topic-arn", topic, "--format", "json")
    unknown = local_stack.cli("messages", "--topic-arn", topic + "-missing")

    assert text.returncode == 0 and text.stdout.startswith(f"2 message(s) published to {topic}\n")
    assert "subject='Task failed'\ntrain_model failed: out of memory\n" in text.stdout
    messages = json.loads(as_json.stdout)
    assert [(m["subject"], m["message"]) for m in messages] == [
        ("Task failed", "train_model failed: out of memory"),
        (None, "second alert"),
    ]
    assert unknown.returncode == 1 and f"No SNS topic {topic}-missing" in unknown.stderr


def test_seed_fills_the_open_images_bucket_and_creates_the_buckets_asked_for(stack: LocalStack) -> None:
    s3 = stack.config.boto3_client("s3")
    s3.create_bucket(Bucket="seed-kept")
    s3.put_object(Bucket="seed-kept", Key="earlier-run.txt", Body=b"kept")

    result = stack.cli("seed", "--images", "3", "--seed", "7", "--bucket", "seed-new", "--bucket=seed-kept")

    assert result.returncode == 0, result.stderr
    assert "s3://open-images-dataset" in result.stdout
    listed = s3.list_objects_v2(Bucket="open-images-dataset", Prefix="test/")
    assert len(listed["Contents"]) == 3
    assert s3.list_objects_v2(Bucket="seed-new")["KeyCount"] == 0
    assert s3.get_object(Bucket="seed-kept", Key="earlier-run.txt")["Body"].read() == b"kept"
    bad = stack.cli("seed", "--images", "3", "--seed", "7", "--bucket", "Not_A_Bucket")
    assert bad.returncode == 1
    assert "cannot create bucket 'Not_A_Bucket'" in bad.stderr


def test_data_survives_down_and_up(stack: LocalStack) -> None:
    s3 = stack.config.boto3_client("s3")
    s3.create_bucket(Bucket="survivor")
    s3.put_object(Bucket="survivor", Key="kept.txt", Body=b"still here")
    stack.config.boto3_client("sns").create_topic(Name="forgotten")
    before = pids(stack)
    bystander = subprocess.Popen(["sleep", "60"])

    try:
        stopped = stack.down()
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
    status = stack.cli("status")

    for description in SERVICES:
        assert f"{description}: stopped (pid {before[PID_FILES[description]]})" in stopped.stdout
    assert not any(stack.config.pids_dir.glob("*.pid"))
    assert status.returncode == 3 and status.stdout.count(" stopped") == len(SERVICES)
    assert not any(process_alive(pid) for pid in before.values())

    stack.up()

    s3 = stack.config.boto3_client("s3")
    assert s3.get_object(Bucket="survivor", Key="kept.txt")["Body"].read() == b"still here"
    # moto keeps SNS state in memory only, as documented: topics are gone after a restart.
    assert stack.config.boto3_client("sns").list_topics()["Topics"] == []


def test_serve_listens_on_the_bind_host_and_stops_the_stack_on_sigterm(idle_stack: LocalStack) -> None:
    config = idle_stack.config
    with serving(idle_stack, LOCAL_AWS_BIND_HOST="0.0.0.0") as process:
        for port in (config.s3_port, config.sagemaker_port, config.moto_port):
            assert listening_hosts(port) in ({"0.0.0.0"}, {"::"}), port
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    assert "Stopping the local stack" in output
    assert idle_stack.cli("status").returncode == 3
    assert not list(config.pids_dir.glob("*.pid"))


def test_serve_stops_the_stack_and_fails_when_a_service_ends(idle_stack: LocalStack) -> None:
    with serving(idle_stack) as process:
        assert listening_hosts(idle_stack.config.s3_port) == {"127.0.0.1"}
        os.kill(pids(idle_stack)["moto"], signal.SIGKILL)
        output = process.communicate(timeout=60)[0]
    assert process.returncode == 1, output
    assert "SNS/SQS/IAM/STS (moto) ended on its own; stopping the stack" in output
    assert idle_stack.cli("status").returncode == 3


def test_a_stack_that_does_not_run(idle_stack: LocalStack) -> None:
    status = idle_stack.cli("status")
    down = idle_stack.cli("down")
    seed = idle_stack.cli("seed", "--images", "1")
    messages = idle_stack.cli("messages", "--topic-arn", "arn:aws:sns:us-east-1:123456789012:alerts")

    assert status.returncode == 3 and status.stdout.count(" stopped") == len(SERVICES)
    assert down.returncode == 0 and down.stdout.count(": not running") == len(SERVICES)
    assert seed.returncode == 3 and "S3 (SeaweedFS) does not answer" in seed.stderr
    assert "python -m local_aws up" in seed.stderr
    assert messages.returncode == 3 and "SNS/SQS/IAM/STS (moto) does not answer" in messages.stderr


def test_a_taken_port_is_named_with_the_setting_to_change(idle_stack: LocalStack) -> None:
    port = idle_stack.config.s3_port
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        result = idle_stack.cli("up", "--timeout", "20")

    assert result.returncode == 1
    assert (
        f"Port {port} on 127.0.0.1 is already in use; S3 (SeaweedFS) needs it for its S3 API."
        in result.stderr
    )
    assert "choose a free port with LOCAL_AWS_S3_PORT." in result.stderr
    assert not any(idle_stack.config.pids_dir.glob("*.pid"))


def test_a_service_dying_at_start_shows_its_log_and_nothing_stays_running(
    idle_stack: LocalStack, tmp_path: Path
) -> None:
    weed = tmp_path / "weed"
    weed.write_text(
        "#!/bin/sh\necho 'F1126 server.go:363 Check Meta Folder: permission denied' >&2\nexit 2\n"
    )
    weed.chmod(0o755)

    result = idle_stack.cli("up", "--timeout", "20", LOCAL_AWS_WEED=str(weed))

    assert result.returncode == 1
    assert "S3 (SeaweedFS) exited during start with exit code 2" in result.stderr
    assert "F1126 server.go:363 Check Meta Folder: permission denied" in result.stderr
    assert str(idle_stack.config.logs_dir / "seaweedfs.log") in result.stderr
    assert not any(idle_stack.config.pids_dir.glob("*.pid"))
    assert idle_stack.cli("status").stdout.count(" stopped") == len(SERVICES)


def test_a_missing_weed_binary_is_a_clear_error(idle_stack: LocalStack) -> None:
    result = idle_stack.cli("up", LOCAL_AWS_WEED="/nonexistent/weed")

    assert result.returncode == 1
    assert result.stderr == "error: LOCAL_AWS_WEED=/nonexistent/weed is not an executable file.\n"


def test_env_exports_quoted_values_that_a_shell_reads_back(idle_stack: LocalStack) -> None:
    exported = subprocess.run(
        ["bash", "-c", f'eval "$({sys.executable} -m local_aws env)" && env -0'],
        cwd=REPO_ROOT,
        env=idle_stack.environment(),
        capture_output=True,
        check=True,
    )
    as_json = json.loads(idle_stack.cli("env", "--format", "json").stdout)
    shell_environment = dict(
        item.split("=", 1) for item in exported.stdout.decode().split("\0") if "=" in item
    )

    assert as_json == stack_variables(idle_stack.config)
    assert {name: shell_environment[name] for name in as_json} == as_json
    connection = json.loads(as_json["AIRFLOW_CONN_AWS_DEFAULT"])
    assert connection["extra"]["endpoint_url"] == idle_stack.config.sagemaker_endpoint
    assert connection["extra"]["service_config"]["sns"]["endpoint_url"] == idle_stack.config.moto_endpoint
    assert as_json["LOCAL_AWS_PORTAL_URL"] == f"http://127.0.0.1:{idle_stack.config.portal_port}"


def test_env_gives_the_dag_the_stacks_minimum_for_automated_labeling(tmp_path: Path, monkeypatch) -> None:
    config = LocalAwsConfig(data_dir=tmp_path, auto_labeling_min_objects=321)
    for name, value in stack_variables(config).items():
        monkeypatch.setenv(name, value)

    assert label_step.auto_labeling_min_images() == 321


def test_env_gives_the_dag_the_networks_the_stack_trains_beyond_aws(tmp_path: Path, monkeypatch) -> None:
    for name, value in stack_variables(LocalAwsConfig(data_dir=tmp_path)).items():
        monkeypatch.setenv(name, value)

    extension = train_step.configured_extra_base_networks()
    assert (extension.names, extension.min_image_shape) == (
        ("tiny-vgg", "mobilenet-v3", "efficientnet-lite0"),
        64,
    )


def test_env_and_the_other_commands_need_no_torch() -> None:
    """The object-detection extra (torch) is optional: ``env`` reads the algorithm's rules without it."""
    probe = "import sys, local_aws.cli, local_aws.environment; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, check=False).returncode == 0


def test_endpoint_variables_follow_botocore_service_ids() -> None:
    session = botocore.session.get_session()
    for service, variable in ENDPOINT_VARIABLES.items():
        service_id = session.get_service_model(service).service_id
        assert variable == "AWS_ENDPOINT_URL_" + str(service_id).replace(" ", "_").upper()


def test_help_and_bad_usage(idle_stack: LocalStack) -> None:
    helped = idle_stack.cli("--help")
    wrong = idle_stack.cli("seed", "--images", "many")

    assert helped.returncode == 0
    for command in ("up", "down", "status", "env", "seed", "messages"):
        assert f"    {command} " in helped.stdout
    assert "LOCAL_AWS_S3_PORT" in helped.stdout
    assert wrong.returncode == 2 and "expected a whole number >= 0, got 'many'" in wrong.stderr


def test_the_portal_url_is_where_browsers_reach_it_when_set(tmp_path: Path) -> None:
    in_compose = LocalAwsConfig(data_dir=tmp_path, host="local-aws", portal_port=8336, portal_url="")
    assert stack_variables(in_compose)["LOCAL_AWS_PORTAL_URL"] == "http://local-aws:8336"
    published = dataclasses.replace(in_compose, portal_url="http://localhost:8336/")
    assert stack_variables(published)["LOCAL_AWS_PORTAL_URL"] == "http://localhost:8336"
