"""The SeaweedFS command line the stack runs: what another user's leftovers on the machine cannot break."""

import os
import tempfile
from pathlib import Path

from local_aws.config import LocalAwsConfig
from local_aws.seaweedfs import command


def test_its_unix_sockets_are_this_users_and_this_ports(tmp_path):
    config = LocalAwsConfig(data_dir=tmp_path, s3_port=18333, seaweed_filer_port=18888)
    options = dict(argument.lstrip("-").split("=", 1) for argument in command(config, Path("weed"))[2:])
    user = os.getuid()
    assert options["s3.localSocket"] == f"{tempfile.gettempdir()}/local-aws-{user}-seaweedfs-s3-18333.sock"
    assert (
        options["filer.localSocket"] == f"{tempfile.gettempdir()}/local-aws-{user}-seaweedfs-filer-18888.sock"
    )
