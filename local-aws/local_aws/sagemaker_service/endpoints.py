"""Endpoint configs and endpoints in the service's SQLite file.

An endpoint row keeps a snapshot of what it deploys (``VariantSpec`` per production variant: the model's
image and data), taken when CreateEndpoint or UpdateEndpoint is called, so that deleting its config or
model later does not break it (as on AWS), and so that the endpoint manager can start it again after a
restart. ``generation`` counts the deployments the manager has started: the manager records the outcome
of a deployment only while it is still the endpoint's latest (``claim``), so a deployment overtaken by an
update or a delete never overwrites the endpoint.

Statuses: Creating → InService | Failed; InService → Updating → InService (FailureReason set when the new
config did not deploy and the old one kept serving); InService → SystemUpdating → InService | Failed while
the manager starts a serving process again (after a restart of the stack, or when one died); any status
→ Deleting → the row is gone.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, dataclass
from typing import Any

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.errors import ValidationError
from local_aws.sagemaker_service.store import StateDb

MAX_FAILURE_REASON = 1024
SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS endpoint_configs (
    name_key TEXT PRIMARY KEY,          -- lower-case name
    name TEXT NOT NULL,
    arn TEXT NOT NULL,
    request TEXT NOT NULL,              -- the validated CreateEndpointConfig request, JSON
    creation_time REAL NOT NULL
)
""",
    """
CREATE TABLE IF NOT EXISTS endpoints (
    name_key TEXT PRIMARY KEY,          -- lower-case name
    name TEXT NOT NULL,
    arn TEXT NOT NULL,
    request TEXT NOT NULL,              -- the validated CreateEndpoint request, JSON
    status TEXT NOT NULL,
    failure_reason TEXT,
    creation_time REAL NOT NULL,
    last_modified_time REAL NOT NULL,
    config_name TEXT NOT NULL,          -- the config deployed (or being created)
    variants TEXT NOT NULL,             -- its VariantSpecs, JSON
    pending_config_name TEXT,           -- while Updating: the config being deployed
    pending_variants TEXT,
    pending_start_time REAL,
    generation INTEGER NOT NULL DEFAULT 0,
    serving TEXT                        -- the manager's processes: [{variant, port, pid, instance_id}], JSON
)
""",
)
# The endpoint statuses (SageMaker's names) in one place, as the module docstring's lifecycle reaches them:
# every status DescribeEndpoint and ListEndpoints may report,
ENDPOINT_STATUSES = ("Creating", "InService", "Updating", "SystemUpdating", "Failed", "Deleting")
# those in which the manager deploys something (the deployment ends InService or Failed),
DEPLOYING_STATUSES = ("Creating", "Updating", "SystemUpdating")
# those an endpoint keeps until it is updated or deleted (Deleting ends with the row gone),
SETTLED_STATUSES = ("InService", "Failed")
# and those in which an endpoint has a deployed config to describe.
DEPLOYED_STATUSES = ("InService", "Updating", "SystemUpdating", "Deleting")


def _now() -> float:
    return round(time.time(), 3)


def endpoint_config_arn(config: LocalAwsConfig, name: str) -> str:
    return f"arn:aws:sagemaker:{config.region}:{config.account_id}:endpoint-config/{name.lower()}"


def endpoint_arn(config: LocalAwsConfig, name: str) -> str:
    return f"arn:aws:sagemaker:{config.region}:{config.account_id}:endpoint/{name.lower()}"


@dataclass(frozen=True)
class VariantSpec:
    """What one production variant serves, fixed when the endpoint is created or updated."""

    variant_name: str
    model_name: str
    image: str
    model_data_url: str
    initial_weight: float
    instance_type: str | None
    instance_count: int
    startup_timeout_s: int | None  # ContainerStartupHealthCheckTimeoutInSeconds


def _variants_json(variants: list[VariantSpec]) -> str:
    return json.dumps([asdict(variant) for variant in variants])


def _variants(text: str | None) -> list[VariantSpec]:
    return [VariantSpec(**item) for item in json.loads(text)] if text else []


@dataclass(frozen=True)
class EndpointConfig:
    name: str
    arn: str
    request: dict[str, Any]
    creation_time: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> EndpointConfig:
        values = dict(row)
        values.pop("name_key")
        values["request"] = json.loads(values["request"])
        return cls(**values)


@dataclass(frozen=True)
class Endpoint:
    name: str
    arn: str
    request: dict[str, Any]
    status: str
    failure_reason: str | None
    creation_time: float
    last_modified_time: float
    config_name: str
    variants: list[VariantSpec]
    pending_config_name: str | None
    pending_variants: list[VariantSpec]
    pending_start_time: float | None
    generation: int
    serving: list[dict[str, Any]]

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Endpoint:
        values = dict(row)
        values.pop("name_key")
        values["request"] = json.loads(values["request"])
        values["variants"] = _variants(values["variants"])
        values["pending_variants"] = _variants(values["pending_variants"])
        values["serving"] = json.loads(values["serving"] or "[]")
        return cls(**values)

    def target(self) -> tuple[str, list[VariantSpec]]:
        """The config and variants that a deployment started now has to bring into service."""
        if self.status == "Updating":
            assert self.pending_config_name is not None
            return self.pending_config_name, self.pending_variants
        return self.config_name, self.variants


class EndpointConfigStore:
    def __init__(self, db: StateDb, config: LocalAwsConfig) -> None:
        self.db = db
        self.config = config
        with db.transaction() as connection:
            connection.execute(SCHEMA[0])

    def arn(self, name: str) -> str:
        return endpoint_config_arn(self.config, name)

    def create(self, request: dict[str, Any]) -> EndpointConfig:
        name = request["EndpointConfigName"]
        try:
            with self.db.transaction() as db:
                db.execute(
                    "INSERT INTO endpoint_configs (name_key, name, arn, request, creation_time)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (name.lower(), name, self.arn(name), json.dumps(request), _now()),
                )
        except sqlite3.IntegrityError as error:
            raise ValidationError(
                f'Cannot create already existing endpoint configuration "{self.arn(name)}".'
            ) from error
        return self.get(name)

    def get(self, name: str) -> EndpointConfig:
        row = (
            self.db.connection()
            .execute("SELECT * FROM endpoint_configs WHERE name_key = ?", (name.lower(),))
            .fetchone()
        )
        if row is None:
            raise ValidationError(f'Could not find endpoint configuration "{self.arn(name)}".')
        return EndpointConfig.from_row(row)

    def all(self) -> list[EndpointConfig]:
        rows = self.db.connection().execute("SELECT * FROM endpoint_configs")
        return [EndpointConfig.from_row(row) for row in rows]

    def delete(self, name: str) -> None:
        with self.db.transaction() as db:
            deleted = db.execute("DELETE FROM endpoint_configs WHERE name_key = ?", (name.lower(),)).rowcount
        if not deleted:
            raise ValidationError(f'Could not find endpoint configuration "{self.arn(name)}".')


class EndpointStore:
    def __init__(self, db: StateDb, config: LocalAwsConfig) -> None:
        self.db = db
        self.config = config
        with db.transaction() as connection:
            connection.execute(SCHEMA[1])

    def arn(self, name: str) -> str:
        return endpoint_arn(self.config, name)

    # The API's side.

    def create(self, request: dict[str, Any], variants: list[VariantSpec]) -> Endpoint:
        name = request["EndpointName"]
        now = _now()
        try:
            with self.db.transaction() as db:
                db.execute(
                    "INSERT INTO endpoints (name_key, name, arn, request, status, creation_time,"
                    " last_modified_time, config_name, variants) VALUES (?, ?, ?, ?, 'Creating', ?, ?, ?, ?)",
                    (
                        name.lower(),
                        name,
                        self.arn(name),
                        json.dumps(request),
                        now,
                        now,
                        request["EndpointConfigName"],
                        _variants_json(variants),
                    ),
                )
        except sqlite3.IntegrityError as error:
            raise ValidationError(f'Cannot create already existing endpoint "{self.arn(name)}".') from error
        return self.get(name)

    def find(self, name: str) -> Endpoint | None:
        row = (
            self.db.connection()
            .execute("SELECT * FROM endpoints WHERE name_key = ?", (name.lower(),))
            .fetchone()
        )
        return None if row is None else Endpoint.from_row(row)

    def get(self, name: str) -> Endpoint:
        endpoint = self.find(name)
        if endpoint is None:
            raise ValidationError(f'Could not find endpoint "{self.arn(name)}".')
        return endpoint

    def all(self) -> list[Endpoint]:
        return [Endpoint.from_row(row) for row in self.db.connection().execute("SELECT * FROM endpoints")]

    def request_update(self, name: str, config_name: str, variants: list[VariantSpec]) -> bool:
        """InService → Updating to ``config_name``; False if the endpoint was not InService."""
        now = _now()
        with self.db.transaction() as db:
            updated = db.execute(
                "UPDATE endpoints SET status = 'Updating', pending_config_name = ?, pending_variants = ?,"
                " pending_start_time = ?, last_modified_time = ? WHERE name_key = ? AND status = 'InService'",
                (config_name, _variants_json(variants), now, now, name.lower()),
            ).rowcount
        return bool(updated)

    def request_delete(self, name: str) -> None:
        with self.db.transaction() as db:
            db.execute(
                "UPDATE endpoints SET status = 'Deleting', last_modified_time = ? WHERE name_key = ?",
                (_now(), name.lower()),
            )

    # The endpoint manager's side.

    def claim(self, name: str, status: str) -> int | None:
        """Start a deployment of an endpoint that is still ``status``: its generation, or None."""
        with self.db.transaction() as db:
            updated = db.execute(
                "UPDATE endpoints SET generation = generation + 1 WHERE name_key = ? AND status = ?",
                (name.lower(), status),
            ).rowcount
            if not updated:
                return None
            row = db.execute(
                "SELECT generation FROM endpoints WHERE name_key = ?", (name.lower(),)
            ).fetchone()
        return int(row["generation"])

    def relaunch(self, name: str) -> None:
        """InService without a serving process (a restart, or a process that died) → SystemUpdating."""
        with self.db.transaction() as db:
            db.execute(
                "UPDATE endpoints SET status = 'SystemUpdating', serving = NULL, last_modified_time = ?"
                " WHERE name_key = ? AND status = 'InService'",
                (_now(), name.lower()),
            )

    def deployed(self, name: str, generation: int, serving: list[dict[str, Any]]) -> bool:
        """The deployment of ``generation`` serves: → InService on its config; False if it was overtaken."""
        with self.db.transaction() as db:
            updated = db.execute(
                "UPDATE endpoints SET status = 'InService', failure_reason = NULL, serving = ?,"
                " config_name = COALESCE(pending_config_name, config_name),"
                " variants = COALESCE(pending_variants, variants), pending_config_name = NULL,"
                " pending_variants = NULL, pending_start_time = NULL, last_modified_time = ?"
                f" WHERE name_key = ? AND generation = ? AND status IN {DEPLOYING_STATUSES}",
                (json.dumps(serving), _now(), name.lower(), generation),
            ).rowcount
        return bool(updated)

    def deployment_failed(self, name: str, generation: int, reason: str) -> None:
        """An update that failed leaves the old config in service; anything else fails the endpoint."""
        reason = reason[:MAX_FAILURE_REASON]
        with self.db.transaction() as db:
            db.execute(
                "UPDATE endpoints SET failure_reason = ?, last_modified_time = ?,"
                " status = CASE WHEN status = 'Updating' THEN 'InService' ELSE 'Failed' END,"
                " serving = CASE WHEN status = 'Updating' THEN serving ELSE NULL END,"
                " pending_config_name = NULL, pending_variants = NULL, pending_start_time = NULL"
                f" WHERE name_key = ? AND generation = ? AND status IN {DEPLOYING_STATUSES}",
                (reason, _now(), name.lower(), generation),
            )

    def remove(self, name: str) -> None:
        """The endpoint's processes are stopped: a Deleting endpoint is gone."""
        with self.db.transaction() as db:
            db.execute("DELETE FROM endpoints WHERE name_key = ? AND status = 'Deleting'", (name.lower(),))
