"""CloudWatch Logs' data: log groups, streams and events in the service's SQLite file.

Also the internal API job code uses to write logs without HTTP::

    LogStore(config.state_db).put_events("/aws/sagemaker/LabelingJobs", job_name, ["started", ...])

Events of a stream are ordered by (timestamp, id): id is the ingestion order, so events with equal
timestamps keep the order they were put in, and (timestamp, id) is a position the API's tokens can name.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from local_aws.sagemaker_service.errors import LogsResourceAlreadyExists, LogsResourceNotFound
from local_aws.sagemaker_service.store import StateDb

# A position in a stream: events at or after it have (timestamp, id) >= it.
Position = tuple[int, int]
_BATCH = 500


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class StoredEvent:
    id: int
    stream_name: str
    timestamp: int
    ingestion_time: int
    message: str

    @property
    def position(self) -> Position:
        return (self.timestamp, self.id)

    @property
    def next_position(self) -> Position:
        """The position just after this event."""
        return (self.timestamp, self.id + 1)


class LogStore:
    def __init__(self, db: StateDb | Path) -> None:
        self.db = db if isinstance(db, StateDb) else StateDb(db)

    # Groups.

    def create_group(
        self, name: str, *, log_group_class: str = "STANDARD", kms_key_id: str | None = None
    ) -> None:
        try:
            with self.db.transaction() as db:
                db.execute(
                    "INSERT INTO log_groups (name, creation_time, log_group_class, kms_key_id)"
                    " VALUES (?, ?, ?, ?)",
                    (name, now_ms(), log_group_class, kms_key_id),
                )
        except sqlite3.IntegrityError as error:
            raise LogsResourceAlreadyExists("The specified log group already exists") from error

    def group(self, name: str) -> sqlite3.Row:
        row = self.db.connection().execute("SELECT * FROM log_groups WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise LogsResourceNotFound("The specified log group does not exist.")
        return row

    def groups(self, *, prefix: str = "", contains: str = "") -> list[sqlite3.Row]:
        """Groups whose names start with ``prefix`` and contain ``contains``, in byte order (as AWS sorts)."""
        rows = self.db.connection().execute(
            "SELECT g.*, (SELECT COALESCE(SUM(stored_bytes), 0) FROM log_streams s"
            " WHERE s.group_name = g.name) AS stored_bytes FROM log_groups g"
            " WHERE substr(g.name, 1, ?) = ? AND instr(g.name, ?) > 0"
            " ORDER BY g.name",
            (len(prefix), prefix, contains),
        )
        return rows.fetchall()

    # Streams.

    def create_stream(self, group: str, name: str) -> None:
        self.group(group)
        try:
            with self.db.transaction() as db:
                db.execute(
                    "INSERT INTO log_streams (group_name, name, creation_time) VALUES (?, ?, ?)",
                    (group, name, now_ms()),
                )
        except sqlite3.IntegrityError as error:
            raise LogsResourceAlreadyExists("The specified log stream already exists") from error

    def stream(self, group: str, name: str) -> sqlite3.Row:
        self.group(group)
        row = (
            self.db.connection()
            .execute("SELECT * FROM log_streams WHERE group_name = ? AND name = ?", (group, name))
            .fetchone()
        )
        if row is None:
            raise LogsResourceNotFound("The specified log stream does not exist.")
        return row

    def streams(self, group: str) -> list[sqlite3.Row]:
        self.group(group)
        return (
            self.db.connection()
            .execute("SELECT * FROM log_streams WHERE group_name = ? ORDER BY name", (group,))
            .fetchall()
        )

    # Events.

    def append(self, stream: sqlite3.Row, events: Sequence[tuple[int, str]]) -> int:
        """Store ``(timestamp ms, message)`` events in ``stream``; the stream's upload count after it."""
        ingestion_time = now_ms()
        size = sum(len(message.encode()) for _, message in events)
        with self.db.transaction() as db:
            if events:
                db.executemany(
                    "INSERT INTO log_events (stream_id, timestamp, ingestion_time, message)"
                    " VALUES (?, ?, ?, ?)",
                    [(stream["id"], timestamp, ingestion_time, message) for timestamp, message in events],
                )
                timestamps = [timestamp for timestamp, _ in events]
                db.execute(
                    "UPDATE log_streams SET"
                    " first_event_timestamp = MIN(COALESCE(first_event_timestamp, ?), ?),"
                    " last_event_timestamp = MAX(COALESCE(last_event_timestamp, ?), ?),"
                    " last_ingestion_time = ?, stored_bytes = stored_bytes + ? WHERE id = ?",
                    (
                        min(timestamps),
                        min(timestamps),
                        max(timestamps),
                        max(timestamps),
                        ingestion_time,
                        size,
                        stream["id"],
                    ),
                )
            db.execute("UPDATE log_streams SET uploads = uploads + 1 WHERE id = ?", (stream["id"],))
            return db.execute("SELECT uploads FROM log_streams WHERE id = ?", (stream["id"],)).fetchone()[0]

    def put_events(self, group: str, stream: str, messages: Iterable[str | tuple[int, str]]) -> int:
        """Append events for job code, creating the group and stream if needed; strings are stamped now.

        Returns how many events were stored.
        """
        for create in (lambda: self.create_group(group), lambda: self.create_stream(group, stream)):
            with contextlib.suppress(LogsResourceAlreadyExists):
                create()
        stamp = now_ms()
        events = [(stamp, item) if isinstance(item, str) else (int(item[0]), item[1]) for item in messages]
        self.append(self.stream(group, stream), events)
        return len(events)

    def events(
        self,
        stream_ids: Sequence[int],
        *,
        start: Position,
        forward: bool,
        min_time: int | None = None,
        max_time: int | None = None,
    ) -> Iterator[StoredEvent]:
        """Events of the streams from ``start`` on (forward) or before it (backward), within the times.

        Forward yields events at or after ``start`` oldest first; backward yields events before ``start``
        newest first. ``min_time`` and ``max_time`` are inclusive. Read in batches, so a caller that stops
        early reads little.
        """
        if not stream_ids:
            return
        streams = ",".join("?" * len(stream_ids))
        compare, order = (">=", "ASC") if forward else ("<", "DESC")
        low = -(2**63) if min_time is None else min_time
        high = 2**63 - 1 if max_time is None else max_time
        position = start
        while True:
            rows = (
                self.db.connection()
                .execute(
                    "SELECT e.id, s.name AS stream_name, e.timestamp, e.ingestion_time, e.message"
                    " FROM log_events e JOIN log_streams s ON s.id = e.stream_id"
                    f" WHERE e.stream_id IN ({streams}) AND (e.timestamp, e.id) {compare} (?, ?)"
                    " AND e.timestamp BETWEEN ? AND ?"
                    f" ORDER BY e.timestamp {order}, e.id {order} LIMIT ?",
                    (*stream_ids, *position, low, high, _BATCH),
                )
                .fetchall()
            )
            for row in rows:
                yield StoredEvent(**dict(row))
            if len(rows) < _BATCH:
                return
            last = StoredEvent(**dict(rows[-1]))
            position = last.next_position if forward else last.position
