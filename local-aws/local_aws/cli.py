"""``python -m local_aws``: start, stop and inspect the local stack, print its environment, seed its data,
manage the worker accounts of private workteams.

Exit codes: 0 success; 1 an error (the message says what to do); 2 bad command-line usage; 3 the stack (or
the service a command needs) is not running.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict

from local_aws import moto_server, seaweedfs, worker_commands
from local_aws.config import LocalAwsConfig
from local_aws.environment import PACKAGE_PARENT, export_lines, service_variables, stack_variables
from local_aws.processes import (
    PortUse,
    ServiceSpec,
    StackError,
    http_answers,
    python_command,
    start_services,
    statuses,
    stop_services,
)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_NOT_RUNNING = 3
DEFAULT_UP_TIMEOUT = 90.0
DEFAULT_DOWN_TIMEOUT = 30.0
SERVE_CHECK_S = 5.0
SAGEMAKER_DESCRIPTION = "SageMaker/Logs (local service)"
PORTAL_DESCRIPTION = "Worker portal (private teams)"

_EPILOG = """\
settings (environment variables): LOCAL_AWS_DATA_DIR (default: .local-aws/ in the repository),
LOCAL_AWS_S3_PORT (8333), LOCAL_AWS_SAGEMAKER_PORT (8334), LOCAL_AWS_MOTO_PORT (8335),
LOCAL_AWS_PORTAL_PORT (8336: the worker portal; LOCAL_AWS_PORTAL_URL, where browsers reach it, if not at
LOCAL_AWS_HOST), LOCAL_AWS_SEAWEED_MASTER_PORT (9333), LOCAL_AWS_SEAWEED_VOLUME_PORT (8382),
LOCAL_AWS_SEAWEED_FILER_PORT (8888), LOCAL_AWS_REGION (us-east-1), LOCAL_AWS_WEED (the weed binary),
LOCAL_AWS_AUTO_LABELING_MIN_OBJECTS (1000: the smallest dataset a labeling job labels automatically; AWS
documents 1,250), LOCAL_AWS_AUTO_LABELING_HYPERPARAMETERS (a JSON object over the object-detection
hyperparameters of automated labeling's training jobs). SeaweedFS also listens on each of its ports +
10000 (gRPC). Everything listens on LOCAL_AWS_BIND_HOST (127.0.0.1; 0.0.0.0 in a container) and clients
reach it at LOCAL_AWS_HOST (127.0.0.1; the stack's host name from another container).

exit codes: 0 success, 1 error, 2 bad usage, 3 not running.

typical use:
  python -m local_aws up
  eval "$(python -m local_aws env)"     # boto3, the AWS CLI and Airflow now use the stack
  python -m local_aws seed
  python -m local_aws down              # data stays in LOCAL_AWS_DATA_DIR
"""


def sagemaker_service(config: LocalAwsConfig) -> ServiceSpec:
    """The local SageMaker service (SageMaker, its runtime, CloudWatch Logs) as a service of the stack."""
    return ServiceSpec(
        name="sagemaker",
        description=SAGEMAKER_DESCRIPTION,
        prepare=lambda: python_command(
            "-m",
            "local_aws.sagemaker_service",
            *("--host", config.bind_host, "--port", str(config.sagemaker_port)),
        ),
        endpoint=config.sagemaker_endpoint,
        ports=(PortUse(config.sagemaker_port, "SageMaker/Logs API", "LOCAL_AWS_SAGEMAKER_PORT"),),
        probe=lambda: http_answers(f"{config.sagemaker_endpoint}/_local/health"),
        log_path=config.logs_dir / "sagemaker.log",
        pid_path=config.pids_dir / "sagemaker.pid",
        env=service_variables(config),
        cwd=PACKAGE_PARENT,
    )


def portal_service(config: LocalAwsConfig) -> ServiceSpec:
    """The worker portal, where the people of private workteams sign in and label."""
    return ServiceSpec(
        name="portal",
        description=PORTAL_DESCRIPTION,
        prepare=lambda: python_command(
            "-m", "local_aws.portal", *("--host", config.bind_host, "--port", str(config.portal_port))
        ),
        endpoint=config.portal_endpoint,
        ports=(PortUse(config.portal_port, "worker portal", "LOCAL_AWS_PORTAL_PORT"),),
        probe=lambda: http_answers(f"{config.portal_endpoint}/_local/health"),
        log_path=config.logs_dir / "portal.log",
        pid_path=config.pids_dir / "portal.pid",
        env=service_variables(config),
        cwd=PACKAGE_PARENT,
    )


def stack_services(config: LocalAwsConfig) -> list[ServiceSpec]:
    """The stack's services, in start order."""
    return [
        seaweedfs.service(config),
        moto_server.service(config),
        sagemaker_service(config),
        portal_service(config),
    ]


def _report(line: str) -> None:
    print(line, flush=True)


def up(config: LocalAwsConfig, timeout: float) -> int:
    print(f"Starting the local stack (data in {config.data_dir}) ...", flush=True)
    start_services(config.bind_host, stack_services(config), timeout, _report)
    print(
        'Ready. Point AWS clients at it with: eval "$(python -m local_aws env)"\n'
        "Note: SNS/SQS/IAM/STS state (moto) lives in memory and does not survive `down`.",
        flush=True,
    )
    return EXIT_OK


def serve(config: LocalAwsConfig, timeout: float) -> int:
    """``up``, then stay in the foreground (a container's main process) until SIGTERM or SIGINT, or until a
    service's process ends; then ``down``. Exit code 1 when a service ended on its own."""
    finished = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda *_: finished.set())
    ended: list[str] = []
    try:
        up(config, timeout)
        while not ended and not finished.wait(SERVE_CHECK_S):
            states = statuses(stack_services(config))
            ended = [state.spec.description for state in states if state.record is None]
        if ended:
            print(f"error: {', '.join(ended)} ended on its own; stopping the stack", file=sys.stderr)
    finally:
        down(config, DEFAULT_DOWN_TIMEOUT)
    return EXIT_ERROR if ended else EXIT_OK


def down(config: LocalAwsConfig, timeout: float) -> int:
    print("Stopping the local stack (SeaweedFS takes about 15 s to stop cleanly) ...", flush=True)
    stop_services(stack_services(config), timeout, _report)
    print(f"Data stays in {config.data_dir}.", flush=True)
    return EXIT_OK


def status(config: LocalAwsConfig) -> int:
    all_up = True
    for state in statuses(stack_services(config)):
        spec, record = state.spec, state.record
        if record is None:
            all_up = False
            print(f"{spec.description:<32} stopped")
            continue
        answering = "answering" if state.answering else "NOT answering"
        all_up = all_up and state.answering
        print(f"{spec.description:<32} running   pid {record.pid:<8} {spec.endpoint:<24} {answering}")
    return EXIT_OK if all_up else EXIT_NOT_RUNNING


def env(config: LocalAwsConfig, output_format: str) -> int:
    variables = stack_variables(config)
    if output_format == "json":
        print(json.dumps(variables, indent=2))
    else:
        sys.stdout.write(export_lines(variables))
    return EXIT_OK


def _require(spec: ServiceSpec, command: str) -> bool:
    if spec.probe():
        return True
    print(
        f"{command}: {spec.description} does not answer at {spec.endpoint}; start the stack with "
        "`python -m local_aws up`.",
        file=sys.stderr,
    )
    return False


def seed(config: LocalAwsConfig, images: int | None, seed_value: int, buckets: Sequence[str]) -> int:
    if not _require(seaweedfs.service(config), "seed"):
        return EXIT_NOT_RUNNING
    from botocore.exceptions import ClientError

    from local_aws.synthetic_open_images import ensure_bucket
    from local_aws.synthetic_open_images import seed as seed_open_images

    print(f"Seeding synthetic Open Images into {config.s3_endpoint} (seed {seed_value}) ...", flush=True)
    print(seed_open_images(config, images=images, seed=seed_value), flush=True)
    s3 = config.boto3_client("s3")
    for bucket in buckets:
        try:
            ensure_bucket(s3, bucket, config.region)
        except ClientError as error:
            print(f"error: cannot create bucket {bucket!r}: {error}", file=sys.stderr)
            return EXIT_ERROR
        print(f"Bucket {bucket} is there for the pipeline's outputs.", flush=True)
    return EXIT_OK


def messages(config: LocalAwsConfig, topic_arn: str, output_format: str) -> int:
    if not _require(moto_server.service(config), "messages"):
        return EXIT_NOT_RUNNING
    published = moto_server.published_messages(config, topic_arn)
    if output_format == "json":
        print(json.dumps([asdict(message) for message in published], indent=2))
        return EXIT_OK
    print(f"{len(published)} message(s) published to {topic_arn}")
    for message in published:
        subject = f" subject={message.subject!r}" if message.subject is not None else ""
        print(f"--- {message.message_id}{subject}")
        print(message.message)
    return EXIT_OK


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def _positive_seconds(text: str) -> float:
    problem = argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    try:
        value = float(text)
    except ValueError:
        raise problem from None
    if not value > 0:
        raise problem
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local_aws",
        description="The local stack: S3 (SeaweedFS), SageMaker and Logs (local), SNS/SQS/IAM/STS (moto).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up_parser = commands.add_parser("up", help="start the stack (idempotent) and wait until it answers")
    up_parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=DEFAULT_UP_TIMEOUT,
        help=f"seconds to wait for each service to answer (default {DEFAULT_UP_TIMEOUT:.0f})",
    )
    serve_parser = commands.add_parser(
        "serve",
        help="start the stack and run in the foreground until stopped (SIGTERM, Ctrl-C); then stop it",
    )
    serve_parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=DEFAULT_UP_TIMEOUT,
        help=f"seconds to wait for each service to answer (default {DEFAULT_UP_TIMEOUT:.0f})",
    )
    down_parser = commands.add_parser("down", help="stop what `up` started; data stays")
    down_parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=DEFAULT_DOWN_TIMEOUT,
        help=f"seconds to wait after SIGTERM before SIGKILL (default {DEFAULT_DOWN_TIMEOUT:.0f})",
    )
    commands.add_parser("status", help="show each service; exit code 0 if all answer, 3 otherwise")
    env_parser = commands.add_parser("env", help='print export lines: eval "$(python -m local_aws env)"')
    env_parser.add_argument("--format", choices=["shell", "json"], default="shell", help="default: shell")
    seed_parser = commands.add_parser(
        "seed", help="fill bucket open-images-dataset with synthetic Open Images"
    )
    seed_parser.add_argument("--images", type=_non_negative_int, default=None, help="number of images")
    seed_parser.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")
    seed_parser.add_argument(
        "--bucket",
        action="append",
        default=[],
        help="also create this bucket (the DAG's `bucket` param) unless it exists; repeatable",
    )
    messages_parser = commands.add_parser("messages", help="print the messages published to an SNS topic")
    messages_parser.add_argument("--topic-arn", required=True, help="the topic's ARN")
    messages_parser.add_argument("--format", choices=["text", "json"], default="text", help="default: text")
    worker_commands.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        config = LocalAwsConfig()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    try:
        if arguments.command == "up":
            return up(config, arguments.timeout)
        if arguments.command == "serve":
            return serve(config, arguments.timeout)
        if arguments.command == "down":
            return down(config, arguments.timeout)
        if arguments.command == "status":
            return status(config)
        if arguments.command == "env":
            return env(config, arguments.format)
        if arguments.command == "seed":
            return seed(config, arguments.images, arguments.seed, arguments.bucket)
        if arguments.command == "workers":
            worker_commands.run(config, arguments)
            return EXIT_OK
        return messages(config, arguments.topic_arn, arguments.format)
    except (StackError, worker_commands.WorkerCommandError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
