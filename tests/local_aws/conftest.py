"""Shared fixtures of the local stack's tests: free ports, a config in a tmp data dir, a running stack.

``LocalStack`` drives ``python -m local_aws`` in subprocesses with the stack's ``LOCAL_AWS_*`` settings, as a
user would; ``local_stack`` is one stack started once per test session (S3, SageMaker/Logs, SNS/SQS/IAM/STS
on free ports) for tests that only need a running stack. Tests that stop or restart a stack start their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from local_aws.config import LocalAwsConfig
from local_aws.environment import config_variables, stack_variables
from tests.local_aws.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def moto_s3_port() -> Iterator[int]:
    """An S3 served by moto on a free port, for the tests of one module."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield port
    finally:
        server.stop()


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in {"Z", "X"}


def stack_config(data_dir: Path) -> LocalAwsConfig:
    """A config with every port free and its data under ``data_dir``."""
    return LocalAwsConfig(
        data_dir=data_dir,
        s3_port=free_port(),
        seaweed_master_port=free_port(),
        seaweed_volume_port=free_port(),
        seaweed_filer_port=free_port(),
        sagemaker_port=free_port(),
        moto_port=free_port(),
        portal_port=free_port(),
    )


def _without_stack_variables(environment: Mapping[str, str]) -> dict[str, str]:
    """The environment minus anything that would point a process at another stack or AWS account."""
    return {
        name: value
        for name, value in environment.items()
        if not name.startswith(("AWS_", "LOCAL_AWS_", "AIRFLOW_CONN_"))
    }


@dataclass(frozen=True)
class LocalStack:
    """A stack's config and the ``python -m local_aws`` commands that drive it."""

    config: LocalAwsConfig

    def environment(self, **extra: str) -> dict[str, str]:
        """The caller's environment with this stack's ``LOCAL_AWS_*`` settings (and ``extra``)."""
        return {**_without_stack_variables(os.environ), **config_variables(self.config), **extra}

    def client_environment(self) -> dict[str, str]:
        """What ``eval "$(python -m local_aws env)"`` gives: unmodified boto3 programs use this stack."""
        return {**_without_stack_variables(os.environ), **stack_variables(self.config)}

    def cli(self, *arguments: str, timeout: float = 120, **extra: str) -> subprocess.CompletedProcess[str]:
        """Run ``python -m local_aws ARGUMENTS`` for this stack; the result has its exit code and output."""
        return subprocess.run(
            [sys.executable, "-m", "local_aws", *arguments],
            cwd=REPO_ROOT,
            env=self.environment(**extra),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def up(self) -> subprocess.CompletedProcess[str]:
        result = self.cli("up", "--timeout", str(START_TIMEOUT_S))
        assert result.returncode == 0, f"`up` failed:\n{result.stdout}\n{result.stderr}"
        return result

    def down(self, timeout_s: float | None = None) -> subprocess.CompletedProcess[str]:
        """Stop the stack; a ``timeout_s`` shorter than SeaweedFS's ~16 s clean stop makes it a kill."""
        arguments = ("down",) if timeout_s is None else ("down", "--timeout", str(timeout_s))
        result = self.cli(*arguments)
        assert result.returncode == 0, f"`down` failed:\n{result.stdout}\n{result.stderr}"
        return result


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """One running stack for the whole session, in a tmp data dir on free ports; stopped at the end.

    Nothing restarts it, so SNS/SQS/IAM/STS state (in moto's memory) lasts the session.
    """
    stack = LocalStack(stack_config(tmp_path_factory.mktemp("local-stack")))
    stack.up()
    try:
        yield stack
    finally:
        # Its data is thrown away: a quick kill spares SeaweedFS's slow clean stop.
        stack.down(timeout_s=2)
