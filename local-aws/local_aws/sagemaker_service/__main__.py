"""``python -m local_aws.sagemaker_service [--host H] [--port N] [--data-dir D] [--max-workers K]``."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

import uvicorn

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.app import create_app


def main(argv: list[str] | None = None) -> None:
    defaults = LocalAwsConfig()
    parser = argparse.ArgumentParser(
        prog="python -m local_aws.sagemaker_service",
        description="The local SageMaker service (SageMaker and CloudWatch Logs APIs). Settings come from the"
        " LOCAL_AWS_* environment variables; these options override them.",
    )
    parser.add_argument(
        "--host",
        default=defaults.bind_host,
        help=f"address to listen on (LOCAL_AWS_BIND_HOST, default {defaults.bind_host})",
    )
    parser.add_argument(
        "--port", type=int, default=defaults.sagemaker_port, help="port (LOCAL_AWS_SAGEMAKER_PORT)"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=defaults.data_dir, help="data directory (LOCAL_AWS_DATA_DIR)"
    )
    parser.add_argument(
        "--max-workers", type=int, default=2, help="jobs of each kind run at once, each in its own process"
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be a TCP port number, got {args.port}")
    if args.max_workers < 1:
        parser.error(f"--max-workers must be at least 1, got {args.max_workers}")
    config = dataclasses.replace(
        defaults, bind_host=args.host, sagemaker_port=args.port, data_dir=args.data_dir
    )
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(config, max_workers=args.max_workers)
    uvicorn.run(app, host=config.bind_host, port=config.sagemaker_port, log_level=args.log_level)


if __name__ == "__main__":
    main()
