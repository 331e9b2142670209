"""SageMaker models in the service's SQLite file: what CreateModel stored, for hosting and batch transform.

A model is immutable once created (SageMaker has no UpdateModel): the row keeps the validated CreateModel
request as JSON. Names are unique regardless of case, as SageMaker's lower-cased ARNs imply.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.errors import ValidationError
from local_aws.sagemaker_service.store import StateDb

SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    name_key TEXT PRIMARY KEY,          -- lower-case name
    name TEXT NOT NULL,
    arn TEXT NOT NULL,
    request TEXT NOT NULL,              -- the validated CreateModel request, JSON
    creation_time REAL NOT NULL         -- epoch seconds
)
"""


def model_arn(config: LocalAwsConfig, name: str) -> str:
    return f"arn:aws:sagemaker:{config.region}:{config.account_id}:model/{name.lower()}"


@dataclass(frozen=True)
class Model:
    name: str
    arn: str
    request: dict[str, Any]
    creation_time: float

    @property
    def primary_container(self) -> dict[str, Any]:
        """``PrimaryContainer``, or the first of ``Containers`` (a one-container model may use either)."""
        if "PrimaryContainer" in self.request:
            return self.request["PrimaryContainer"]
        return self.request["Containers"][0]

    @property
    def image(self) -> str:
        return self.primary_container["Image"]

    @property
    def model_data_url(self) -> str | None:
        return self.primary_container.get("ModelDataUrl")

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Model:
        values = dict(row)
        values.pop("name_key")
        values["request"] = json.loads(values["request"])
        return cls(**values)


class ModelStore:
    """The ``models`` table; ``config`` gives the account and region of ARNs (also in error messages)."""

    def __init__(self, db: StateDb, config: LocalAwsConfig) -> None:
        self.db = db
        self.config = config
        with db.transaction() as connection:
            connection.execute(SCHEMA)

    def arn(self, name: str) -> str:
        return model_arn(self.config, name)

    def create(self, request: dict[str, Any]) -> Model:
        name = request["ModelName"]
        try:
            with self.db.transaction() as db:
                db.execute(
                    "INSERT INTO models (name_key, name, arn, request, creation_time) VALUES (?, ?, ?, ?, ?)",
                    (name.lower(), name, self.arn(name), json.dumps(request), round(time.time(), 3)),
                )
        except sqlite3.IntegrityError as error:
            raise ValidationError(f'Cannot create already existing model "{self.arn(name)}".') from error
        return self.get(name)

    def find(self, name: str) -> Model | None:
        row = (
            self.db.connection()
            .execute("SELECT * FROM models WHERE name_key = ?", (name.lower(),))
            .fetchone()
        )
        return None if row is None else Model.from_row(row)

    def get(self, name: str) -> Model:
        """The model; SageMaker's ValidationException when there is none."""
        model = self.find(name)
        if model is None:
            raise ValidationError(f'Could not find model "{self.arn(name)}".')
        return model

    def all(self) -> list[Model]:
        return [Model.from_row(row) for row in self.db.connection().execute("SELECT * FROM models")]

    def delete(self, name: str) -> None:
        with self.db.transaction() as db:
            deleted = db.execute("DELETE FROM models WHERE name_key = ?", (name.lower(),)).rowcount
        if not deleted:
            raise ValidationError(f'Could not find model "{self.arn(name)}".')
