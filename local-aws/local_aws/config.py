"""Where the local stack listens and keeps its data: one frozen settings object, from the environment.

Every port is on 127.0.0.1 (``LOCAL_AWS_BIND_HOST`` widens where the services listen) and configurable;
none collides with Airflow's 8080. Environment variables
(``LOCAL_AWS_DATA_DIR``, ``LOCAL_AWS_S3_PORT``, ...) override the defaults, so tests can run a second stack
on other ports and another data directory.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# In the working directory, like a build tool's cache: `make` runs the stack from the repository root.
DEFAULT_DATA_DIR = Path(".local-aws")
# Served by moto's server: nothing executes there, so a stand-in is honest.
MOTO_SERVICES = frozenset({"sns", "sqs", "iam", "sts"})


def _count(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value:
        return default
    if not value.isdigit():
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def _string_map(name: str) -> tuple[tuple[str, str], ...]:
    """A JSON object of strings, as sorted pairs (the config stays hashable)."""
    value = os.environ.get(name, "")
    if not value:
        return ()
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
        raise ValueError(f'{name} must be a JSON object of strings such as {{"epochs": "10"}}, got {value!r}')
    return tuple(sorted(parsed.items()))


def _port(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value:
        return default
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ValueError(f"{name} must be a TCP port number, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class LocalAwsConfig:
    """Addresses, ports, data locations and the account the stack pretends to be."""

    data_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("LOCAL_AWS_DATA_DIR", DEFAULT_DATA_DIR)).absolute()
    )
    # Where clients reach the services: another container names the stack's (docker-compose.yaml).
    host: str = field(default_factory=lambda: os.environ.get("LOCAL_AWS_HOST", "127.0.0.1"))
    # Where the services listen: 0.0.0.0 serves other machines or containers too (docker-compose.yaml).
    bind_host: str = field(default_factory=lambda: os.environ.get("LOCAL_AWS_BIND_HOST", "127.0.0.1"))
    s3_port: int = field(default_factory=lambda: _port("LOCAL_AWS_S3_PORT", 8333))
    seaweed_master_port: int = field(default_factory=lambda: _port("LOCAL_AWS_SEAWEED_MASTER_PORT", 9333))
    seaweed_volume_port: int = field(default_factory=lambda: _port("LOCAL_AWS_SEAWEED_VOLUME_PORT", 8382))
    seaweed_filer_port: int = field(default_factory=lambda: _port("LOCAL_AWS_SEAWEED_FILER_PORT", 8888))
    sagemaker_port: int = field(default_factory=lambda: _port("LOCAL_AWS_SAGEMAKER_PORT", 8334))
    moto_port: int = field(default_factory=lambda: _port("LOCAL_AWS_MOTO_PORT", 8335))
    # The worker portal, where the people of private workteams label.
    portal_port: int = field(default_factory=lambda: _port("LOCAL_AWS_PORTAL_PORT", 8336))
    # Where people's browsers reach the portal, when not at LOCAL_AWS_HOST (a container's name, for one).
    portal_url: str = field(default_factory=lambda: os.environ.get("LOCAL_AWS_PORTAL_URL", ""))
    region: str = field(default_factory=lambda: os.environ.get("LOCAL_AWS_REGION", "us-east-1"))
    account_id: str = "123456789012"
    # Automated data labeling runs on datasets of at least this many objects (AWS documents 1,250; 1,000
    # lets the reference notebook's full demo, 1,000 images, use it); smaller ones are labeled by humans.
    auto_labeling_min_objects: int = field(
        default_factory=lambda: _count("LOCAL_AWS_AUTO_LABELING_MIN_OBJECTS", 1000)
    )
    # Hyperparameters of automated labeling's training jobs over the stack's defaults (for instance a larger
    # image_shape where a GPU trains them).
    auto_labeling_hyperparameters: tuple[tuple[str, str], ...] = field(
        default_factory=lambda: _string_map("LOCAL_AWS_AUTO_LABELING_HYPERPARAMETERS")
    )
    access_key_id: str = "local-aws-access-key"
    secret_access_key: str = "local-aws-secret-key"

    @property
    def s3_endpoint(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    @property
    def sagemaker_endpoint(self) -> str:
        return f"http://{self.host}:{self.sagemaker_port}"

    @property
    def moto_endpoint(self) -> str:
        return f"http://{self.host}:{self.moto_port}"

    @property
    def portal_endpoint(self) -> str:
        """The worker portal's address, the sign-in URL that DescribeWorkteam gives as SubDomain."""
        return self.portal_url.rstrip("/") or f"http://{self.host}:{self.portal_port}"

    @property
    def seaweedfs_dir(self) -> Path:
        return self.data_dir / "seaweedfs"

    @property
    def state_db(self) -> Path:
        """SQLite file of the local SageMaker service: jobs, resources, logs."""
        return self.data_dir / "sagemaker" / "state.sqlite"

    @property
    def reference_index_db(self) -> Path:
        """SQLite file mapping seeded images (by content) to their reference boxes."""
        return self.data_dir / "reference-index.sqlite"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def pids_dir(self) -> Path:
        return self.data_dir / "pids"

    def endpoint_for(self, service: str) -> str:
        """The stack's endpoint of a boto3 service name (``s3``, ``sagemaker``, ``logs``, ``sns``, ...)."""
        if service == "s3":
            return self.s3_endpoint
        if service in MOTO_SERVICES:
            return self.moto_endpoint
        return self.sagemaker_endpoint

    def boto3_client(self, service: str) -> Any:
        """A boto3 client of ``service`` pointed at the stack, with its credentials and region."""
        import boto3

        endpoint = self.endpoint_for(service)
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )
