"""``python -m local_aws.portal [--host H] [--port N] [--data-dir D]``: the worker portal on its own port."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

import uvicorn

from local_aws.config import LocalAwsConfig
from local_aws.portal.app import create_app


def main(argv: list[str] | None = None) -> None:
    defaults = LocalAwsConfig()
    parser = argparse.ArgumentParser(
        prog="python -m local_aws.portal",
        description="The worker portal, where private workteams label. Settings come from the LOCAL_AWS_*"
        " environment variables; these options override them.",
    )
    parser.add_argument(
        "--host",
        default=defaults.bind_host,
        help=f"address to listen on (LOCAL_AWS_BIND_HOST, default {defaults.bind_host})",
    )
    parser.add_argument("--port", type=int, default=defaults.portal_port, help="port (LOCAL_AWS_PORTAL_PORT)")
    parser.add_argument(
        "--data-dir", type=Path, default=defaults.data_dir, help="data directory (LOCAL_AWS_DATA_DIR)"
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be a TCP port number, got {args.port}")
    config = dataclasses.replace(defaults, bind_host=args.host, portal_port=args.port, data_dir=args.data_dir)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(create_app(config), host=config.bind_host, port=config.portal_port, log_level=args.log_level)


if __name__ == "__main__":
    main()
