"""Runs the pipeline on the local stack with a private workteam, so that a person labels in the worker portal.

``make demo-portal`` calls this after starting the stack and seeding the synthetic Open Images. It creates
the private workteam ``demo-team`` (``CreateWorkteam``, which makes the account's workforce if there is
none) and the worker account ``demo-worker`` with a new password, prints the portal's sign-in URL (the
team's ``SubDomain``) and the credentials, then runs the DAG for 10 images with ``workteam_arn`` set to the
team. The labeling task waits, deferred, until the images are labeled in the portal; the run then trains,
deploys and tears down as usual, and the report lands in ``demo-output/`` as with ``make demo``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from pathlib import Path

from scripts.demo import CPU_TRAINING, DAG_ID, ROLE_ARN, ensure_bucket, point_at_stack, run_dag, show_run

ROOT = Path(__file__).resolve().parents[1]
TEAM = "demo-team"
WORKER = "demo-worker"


def ensure_team(sagemaker: object, name: str) -> dict:
    """The workteam ``name``, created with a member definition that the stack's own accounts stand for."""
    existing = sagemaker.list_workteams(NameContains=name)["Workteams"]
    if name not in {team["WorkteamName"] for team in existing}:
        sagemaker.create_workteam(
            WorkteamName=name,
            Description="People who label the demo's images in the local stack's worker portal",
            MemberDefinitions=[{"OidcMemberDefinition": {"Groups": [name]}}],
        )
    return sagemaker.describe_workteam(WorkteamName=name)["Workteam"]


def ensure_worker(config: object, name: str, team: str) -> str:
    """A worker account ``name`` in ``team`` with a new random password, which is returned."""
    from local_aws.sagemaker_service.store import StateDb
    from local_aws.workforce.accounts import WorkerAccounts

    accounts = WorkerAccounts(StateDb(config.state_db), config.region)
    password = secrets.token_urlsafe(12)
    if accounts.get(name) is None:
        accounts.add(name, password, team)
    else:
        accounts.set_password(name, password)
        accounts.add_to_team(name, team)
    return password


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10, help="images to label (default 10)")
    parser.add_argument("--workers", type=int, default=1, help="people per image (default 1)")
    parser.add_argument("--class-name", default="Bird")
    parser.add_argument("--bucket", default="ground-truth-od")
    parser.add_argument("--output", type=Path, default=ROOT / "demo-output")
    args = parser.parse_args()

    config = point_at_stack()
    from local_aws.synthetic_open_images import dataset_uris

    ensure_bucket(config, args.bucket)
    team = ensure_team(config.boto3_client("sagemaker"), TEAM)
    password = ensure_worker(config, WORKER, TEAM)
    prefix = f"demo-portal/{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
    conf = {
        "class_name": args.class_name,
        "n_images": args.images,
        "workers_per_image": args.workers,
        "workteam_arn": team["WorkteamArn"],
        "bucket": args.bucket,
        "prefix": prefix,
        "role_arn": ROLE_ARN,
        "training_hyperparameters": CPU_TRAINING,
        **dataset_uris().as_dag_params(),
    }
    print(f"Running {DAG_ID} on the local stack for the private workteam {TEAM} with:")
    print(json.dumps(conf, indent=2))
    print(
        "\n"
        "  Label the images in the worker portal:\n"
        f"    URL:      http://{team['SubDomain']}\n"
        f"    name:     {WORKER}\n"
        f"    password: {password}\n"
        "  The run goes on (training, batch transform, endpoint) once every image is labeled.\n",
        flush=True,
    )
    state = run_dag(config, conf, args.output)
    if state != "success":
        raise SystemExit(1)
    workforce = f"worker(s) of the private workteam {TEAM}"
    show_run(config, args.bucket, prefix, args.class_name, args.output, workforce)


if __name__ == "__main__":
    sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]
    main()
