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
