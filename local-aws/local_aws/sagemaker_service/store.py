"""The service's SQLite state: one file (``LocalAwsConfig.state_db``) shared by the server and its workers.

WAL mode lets readers and one writer work at once across processes; every thread opens its own connection
(SQLite connections must not be shared between threads), and writes run in ``BEGIN IMMEDIATE`` transactions
so that a read-modify-write never races another process.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_BUSY_TIMEOUT_S = 30

SCHEMA = """
CREATE TABLE IF NOT EXISTS labeling_jobs (
    name_key TEXT PRIMARY KEY,          -- lower-case name: SageMaker names are unique regardless of case
    name TEXT NOT NULL,
    arn TEXT NOT NULL,
    request TEXT NOT NULL,              -- the validated CreateLabelingJob request, JSON
    status TEXT NOT NULL,
    counters TEXT NOT NULL,             -- LabelCounters, JSON
    failure_reason TEXT,
    creation_time REAL NOT NULL,        -- epoch seconds
    last_modified_time REAL NOT NULL,
    stop_requested_time REAL,
    output_dataset_s3_uri TEXT,
    final_active_learning_model_arn TEXT,
    job_reference_code TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0  -- worker runs started: a worker writes only while it holds the latest
);
CREATE TABLE IF NOT EXISTS log_groups (
    name TEXT PRIMARY KEY,
    creation_time INTEGER NOT NULL,     -- epoch milliseconds, as CloudWatch Logs counts
    log_group_class TEXT NOT NULL,
    kms_key_id TEXT
);
CREATE TABLE IF NOT EXISTS log_streams (
    id INTEGER PRIMARY KEY,
    group_name TEXT NOT NULL REFERENCES log_groups(name),
    name TEXT NOT NULL,
    creation_time INTEGER NOT NULL,
    first_event_timestamp INTEGER,
    last_event_timestamp INTEGER,
    last_ingestion_time INTEGER,
    uploads INTEGER NOT NULL DEFAULT 0,
    stored_bytes INTEGER NOT NULL DEFAULT 0,
    UNIQUE (group_name, name)
);
CREATE TABLE IF NOT EXISTS log_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id INTEGER NOT NULL REFERENCES log_streams(id),
    timestamp INTEGER NOT NULL,
    ingestion_time INTEGER NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS log_events_in_stream ON log_events (stream_id, timestamp, id);
CREATE INDEX IF NOT EXISTS log_events_in_time ON log_events (timestamp, id);
CREATE TABLE IF NOT EXISTS workforces (
    name_key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    arn TEXT NOT NULL,
    request TEXT NOT NULL,              -- the CreateWorkforce request (its configs), JSON
    create_date REAL NOT NULL,
    last_updated_date REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS workteams (
    name_key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    arn TEXT NOT NULL UNIQUE,
    workforce_name TEXT NOT NULL,
    description TEXT NOT NULL,
    member_definitions TEXT NOT NULL,   -- JSON, as CreateWorkteam / UpdateWorkteam gave them
    notification_configuration TEXT,    -- JSON
    worker_access_configuration TEXT,   -- JSON
    create_date REAL NOT NULL,
    last_updated_date REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS worker_accounts (
    name TEXT PRIMARY KEY,              -- what a worker signs in with
    worker_id TEXT NOT NULL UNIQUE,     -- the workerId of their answers: private.<region>.<hex>
    sub TEXT NOT NULL UNIQUE,           -- workerMetadata.identityData.sub
    password_hash TEXT NOT NULL,        -- argon2id, never the password
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS team_members (
    team_key TEXT NOT NULL,             -- workteams.name_key (a member may be added before the team exists)
    worker_name TEXT NOT NULL REFERENCES worker_accounts(name) ON DELETE CASCADE,
    PRIMARY KEY (team_key, worker_name)
);
CREATE TABLE IF NOT EXISTS portal_sessions (
    token_hash TEXT PRIMARY KEY,        -- SHA-256 of the cookie's token: a copy of the file signs no one in
    worker_name TEXT NOT NULL REFERENCES worker_accounts(name) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sign_in_failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    client TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sign_in_failures_by_account ON sign_in_failures (account, at);
CREATE INDEX IF NOT EXISTS sign_in_failures_by_client ON sign_in_failures (client, at);
CREATE TABLE IF NOT EXISTS private_jobs (
    job_key TEXT PRIMARY KEY,           -- labeling_jobs.name_key
    job_name TEXT NOT NULL,
    workteam_arn TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    workers_per_object INTEGER NOT NULL,
    max_concurrent_tasks INTEGER NOT NULL,
    task_time_limit_s INTEGER NOT NULL,
    labels TEXT NOT NULL,               -- the label categories, JSON list
    template_uri TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS private_objects (
    job_key TEXT NOT NULL REFERENCES private_jobs(job_key),
    object_id INTEGER NOT NULL,         -- datasetObjectId: the line of the input manifest
    iteration INTEGER NOT NULL,
    source_ref TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    offered_at REAL NOT NULL,
    expires_at REAL NOT NULL,           -- offered_at + TaskAvailabilityLifetimeInSeconds
    state TEXT NOT NULL,                -- open, done, expired, withdrawn
    PRIMARY KEY (job_key, object_id)
);
CREATE TABLE IF NOT EXISTS private_tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_key TEXT NOT NULL,
    object_id INTEGER NOT NULL,
    worker_name TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    worker_sub TEXT NOT NULL,
    assigned_at REAL NOT NULL,
    deadline REAL NOT NULL,             -- assigned_at + TaskTimeLimitInSeconds
    state TEXT NOT NULL,                -- active, submitted, skipped, released, expired, withdrawn
    ended_at REAL,
    answer TEXT,                        -- the submitted answerContent, JSON
    FOREIGN KEY (job_key, object_id) REFERENCES private_objects(job_key, object_id),
    UNIQUE (job_key, object_id, worker_name)  -- one worker never gets the same image twice
);
CREATE INDEX IF NOT EXISTS private_tasks_by_worker ON private_tasks (worker_name, state);
CREATE INDEX IF NOT EXISTS private_tasks_by_object ON private_tasks (job_key, object_id, state);
CREATE INDEX IF NOT EXISTS private_tasks_by_state ON private_tasks (state, deadline);
CREATE INDEX IF NOT EXISTS private_objects_in_order ON private_objects (job_key, state, iteration, object_id);
"""


class StateDb:
    """The state file, with a connection per thread, created with its schema on first use."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        connection = self.connection()
        connection.execute("PRAGMA journal_mode=WAL")
        with self.transaction() as db:
            for statement in SCHEMA.split(";"):  # the schema's comments have no semicolons
                if statement.strip():
                    db.execute(statement)

    def connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            self._local.connection = connection
        return connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken at once so that concurrent writers queue instead of deadlocking."""
        connection = self.connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection (other threads' close when their threads end)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
