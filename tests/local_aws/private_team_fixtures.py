"""A private workteam in a state file, and the labeling job rows its tasks hang on, for tests.

Rows are written with SQL in the columns of ``local_aws.sagemaker_service.store``'s schema: what these tests
check is the queue and the engine, not how teams and accounts are made (their own tests cover that).
"""

from __future__ import annotations

import time
from typing import Any

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.labeling_jobs import LabelingJobStore
from local_aws.sagemaker_service.store import StateDb

ACCOUNT = "123456789012"


def team_arn(config: LocalAwsConfig, team: str) -> str:
    return f"arn:aws:sagemaker:{config.region}:{ACCOUNT}:workteam/private-crowd/{team}"


def add_team(db: StateDb, config: LocalAwsConfig, team: str, workers: list[str]) -> str:
    """A workteam with ``workers`` as members (accounts made as needed); its ARN."""
    at = time.time()
    arn = team_arn(config, team)
    with db.transaction() as connection:
        connection.execute(
            "INSERT INTO workteams VALUES (?, ?, ?, 'default', 'test team', '[]', NULL, NULL, ?, ?)",
            (team.lower(), team, arn, at, at),
        )
        for worker in workers:
            connection.execute(
                "INSERT OR IGNORE INTO worker_accounts VALUES (?, ?, ?, 'not-a-hash', ?)",
                (worker, f"private.{config.region}.{worker}id", f"sub-{worker}", at),
            )
            connection.execute("INSERT INTO team_members VALUES (?, ?)", (team.lower(), worker))
    return arn


def start_job(db: StateDb, config: LocalAwsConfig, request: dict[str, Any]) -> None:
    """The job's row, InProgress as the engine's first report makes it."""
    LabelingJobStore(db).create(request, config)
    with db.transaction() as connection:
        connection.execute(
            "UPDATE labeling_jobs SET status = 'InProgress' WHERE name_key = ?",
            (request["LabelingJobName"].lower(),),
        )


def end_job(db: StateDb, name: str, status: str = "Completed") -> None:
    with db.transaction() as connection:
        connection.execute("UPDATE labeling_jobs SET status = ? WHERE name_key = ?", (status, name.lower()))


def answer(labels_and_boxes: list[tuple[str, int, int, int, int]], width: int, height: int) -> dict[str, Any]:
    """A crowd-bounding-box answer named ``boundingBox``: boxes as (label, left, top, width, height)."""
    return {
        "boundingBox": {
            "boundingBoxes": [
                {"height": h, "label": label, "left": left, "top": top, "width": w}
                for label, left, top, w, h in labels_and_boxes
            ],
            "inputImageProperties": {"height": height, "width": width},
        }
    }
