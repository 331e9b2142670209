"""The CloudWatch Logs operations, with AWS's rules, defaults and tokens.

- PutLogEvents: events in chronological order, at most 1,048,576 bytes (UTF-8 sizes plus 26 bytes an
  event), spanning at most 24 hours; events older than 14 days or more than 2 hours in the future are
  rejected (``rejectedLogEventsInfo``) while the others are stored. Sequence tokens are ignored, as AWS now
  ignores them; ``nextSequenceToken`` is still returned.
- GetLogEvents: without a token, the newest events (``startFromHead`` false, the default) or the oldest.
  Tokens are ``f/<56 digits>`` and ``b/<56 digits>`` naming a position in the stream; the direction of the
  token wins over ``startFromHead``. At the end of the stream the same token comes back, as on AWS, so a
  pager stops when the token stops changing. ``endTime`` is exclusive here, inclusive in FilterLogEvents
  (as AWS documents each).
- FilterLogEvents: events of several streams interleaved by time; ``nextToken`` only while more matching
  events remain. Names in ``logStreamNames`` that do not exist match nothing.
- Pages hold at most ``limit`` events (default 10,000 for events, 50 for groups and streams) and 1 MB.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
from collections.abc import Iterator
from typing import Any

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.errors import LogsInvalidParameter
from local_aws.sagemaker_service.filter_pattern import FilterPatternError, compile_filter_pattern
from local_aws.sagemaker_service.log_store import LogStore, Position, StoredEvent, now_ms
from local_aws.sagemaker_service.protocol import Handler
from local_aws.sagemaker_service.tokens import decode_token, encode_token

MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD_BYTES = 26
MAX_PAGE_BYTES = 1_048_576
DEFAULT_EVENTS_LIMIT = 10_000
DEFAULT_DESCRIBE_LIMIT = 50
HOUR_MS = 3_600_000
TOO_OLD_MS = 14 * 24 * HOUR_MS
TOO_NEW_MS = 2 * HOUR_MS
MAX_SPAN_MS = 24 * HOUR_MS
# Events FilterLogEvents reads per call before it answers with what it found and a nextToken.
FILTER_SCAN_BUDGET = 200_000
_STREAM_TOKEN = re.compile(r"([fb])/(\d{20})(\d{36})")
_GROUP_ARN = re.compile(r"arn:aws[a-z-]*:logs:[^:]*:\d{12}:log-group:([^:]+)(?::\*)?")
_INVALID_TOKEN = "The specified nextToken is invalid."


class LogsApi:
    def __init__(self, store: LogStore, config: LocalAwsConfig) -> None:
        self.store = store
        self.config = config

    def handlers(self) -> dict[str, Handler]:
        return {
            "CreateLogGroup": self.create_log_group,
            "CreateLogStream": self.create_log_stream,
            "PutLogEvents": self.put_log_events,
            "DescribeLogGroups": self.describe_log_groups,
            "DescribeLogStreams": self.describe_log_streams,
            "GetLogEvents": self.get_log_events,
            "FilterLogEvents": self.filter_log_events,
        }

    def create_log_group(self, params: dict[str, Any]) -> None:
        self.store.create_group(
            params["logGroupName"],
            log_group_class=params.get("logGroupClass", "STANDARD"),
            kms_key_id=params.get("kmsKeyId"),
        )

    def create_log_stream(self, params: dict[str, Any]) -> None:
        self.store.create_stream(params["logGroupName"], params["logStreamName"])

    def put_log_events(self, params: dict[str, Any]) -> dict[str, Any]:
        stream = self.store.stream(params["logGroupName"], params["logStreamName"])
        events = [(event["timestamp"], event["message"]) for event in params["logEvents"]]
        timestamps = [timestamp for timestamp, _ in events]
        if any(later < earlier for earlier, later in itertools.pairwise(timestamps)):
            raise LogsInvalidParameter(
                "Log events in a single PutLogEvents request must be in chronological order."
            )
        size = sum(len(message.encode()) + EVENT_OVERHEAD_BYTES for _, message in events)
        if size > MAX_BATCH_BYTES:
            raise LogsInvalidParameter(
                f"Upload too large: {size} bytes exceeds the limit of {MAX_BATCH_BYTES} bytes"
                f" (the events' UTF-8 sizes plus {EVENT_OVERHEAD_BYTES} bytes an event)."
            )
        now = now_ms()
        too_old_end = sum(1 for timestamp in timestamps if timestamp < now - TOO_OLD_MS)
        too_new_start = next((i for i, t in enumerate(timestamps) if t > now + TOO_NEW_MS), len(events))
        accepted = events[too_old_end:too_new_start]
        if accepted and accepted[-1][0] - accepted[0][0] > MAX_SPAN_MS:
            raise LogsInvalidParameter(
                "The batch of log events in a single PutLogEvents request cannot span more than 24 hours."
            )
        rejected: dict[str, int] = {}
        if too_old_end:
            rejected["tooOldLogEventEndIndex"] = too_old_end
        if too_new_start < len(events):
            rejected["tooNewLogEventStartIndex"] = too_new_start
        uploads = self.store.append(stream, accepted)
        return {"nextSequenceToken": _sequence_token(uploads), "rejectedLogEventsInfo": rejected or None}

    def describe_log_groups(self, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("logGroupNamePrefix", "")
        contains = params.get("logGroupNamePattern", "")
        if prefix and contains:
            raise LogsInvalidParameter(
                "logGroupNamePrefix and logGroupNamePattern are mutually exclusive parameters."
            )
        wanted = {_group_name_of(identifier) for identifier in params.get("logGroupIdentifiers", [])}
        groups = [
            row
            for row in self.store.groups(prefix=prefix, contains=contains)
            if (not wanted or row["name"] in wanted)
            and params.get("logGroupClass") in (None, row["log_group_class"])
        ]
        if "nextToken" in params:
            state = decode_token(params["nextToken"])
            if state is None or not isinstance(state.get("after"), str):
                raise LogsInvalidParameter(_INVALID_TOKEN)
            groups = [row for row in groups if row["name"] > state["after"]]
        limit = params.get("limit", DEFAULT_DESCRIBE_LIMIT)
        page = groups[:limit]
        more = len(groups) > limit
        return {
            "logGroups": [self._group_description(row, brief=bool(contains)) for row in page],
            "nextToken": encode_token({"after": page[-1]["name"]}) if more else None,
        }

    def _group_description(self, row: sqlite3.Row, *, brief: bool) -> dict[str, Any]:
        arn = f"arn:aws:logs:{self.config.region}:{self.config.account_id}:log-group:{row['name']}"
        description = {"logGroupName": row["name"], "creationTime": row["creation_time"], "arn": f"{arn}:*"}
        if brief:
            return description
        return description | {
            "metricFilterCount": 0,
            "storedBytes": row["stored_bytes"],
            "logGroupClass": row["log_group_class"],
            "logGroupArn": arn,
            "kmsKeyId": row["kms_key_id"],
            "deletionProtectionEnabled": False,
        }

    def describe_log_streams(self, params: dict[str, Any]) -> dict[str, Any]:
        group = self._group_name(params)
        prefix = params.get("logStreamNamePrefix", "")
        order_by = params.get("orderBy", "LogStreamName")
        descending = params.get("descending", False)
        if prefix and order_by == "LastEventTime":
            raise LogsInvalidParameter("Cannot order by LastEventTime with a logStreamNamePrefix.")

        def sort_key(row: sqlite3.Row) -> list[Any]:
            if order_by == "LastEventTime":
                return [row["last_event_timestamp"] or 0, row["name"]]
            return [row["name"]]

        streams = sorted(
            (row for row in self.store.streams(group) if row["name"].startswith(prefix)),
            key=sort_key,
            reverse=descending,
        )
        if "nextToken" in params:
            state = decode_token(params["nextToken"])
            if (
                state is None
                or state.get("order") != [order_by, descending]
                or not isinstance(state.get("after"), list)
            ):
                raise LogsInvalidParameter(_INVALID_TOKEN)
            after = state["after"]
            streams = [
                row for row in streams if (sort_key(row) < after if descending else sort_key(row) > after)
            ]
        limit = params.get("limit", DEFAULT_DESCRIBE_LIMIT)
        page = streams[:limit]
        next_token = None
        if len(streams) > limit:
            next_token = encode_token({"order": [order_by, descending], "after": sort_key(page[-1])})
        return {"logStreams": [self._stream_description(group, row) for row in page], "nextToken": next_token}

    def _stream_description(self, group: str, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "logStreamName": row["name"],
            "creationTime": row["creation_time"],
            "firstEventTimestamp": row["first_event_timestamp"],
            "lastEventTimestamp": row["last_event_timestamp"],
            "lastIngestionTime": row["last_ingestion_time"],
            "uploadSequenceToken": _sequence_token(row["uploads"]) if row["uploads"] else None,
            "arn": (
                f"arn:aws:logs:{self.config.region}:{self.config.account_id}:log-group:{group}"
                f":log-stream:{row['name']}"
            ),
            "storedBytes": 0,
        }

    def get_log_events(self, params: dict[str, Any]) -> dict[str, Any]:
        stream = self.store.stream(self._group_name(params), params["logStreamName"])
        limit = params.get("limit", DEFAULT_EVENTS_LIMIT)
        start_time = params.get("startTime")
        end_time = params.get("endTime")
        times = {"min_time": start_time, "max_time": None if end_time is None else end_time - 1}
        token = params.get("nextToken")
        if token is not None:
            forward, position = _parse_stream_token(token)
        elif params.get("startFromHead", False):
            forward, position = True, (start_time or 0, 0)
        else:
            forward, position = False, (2**62, 0)
        events, _ = _page(self.store.events([stream["id"]], start=position, forward=forward, **times), limit)
        if not forward:
            events.reverse()
        if events:
            next_forward = _stream_token("f", events[-1].next_position)
            next_backward = _stream_token("b", events[0].position)
        else:
            resting = position if token is not None or forward else (start_time or 0, 0)
            next_forward = token if token is not None and forward else _stream_token("f", resting)
            next_backward = token if token is not None and not forward else _stream_token("b", resting)
        return {
            "events": [
                {
                    "timestamp": event.timestamp,
                    "message": event.message,
                    "ingestionTime": event.ingestion_time,
                }
                for event in events
            ],
            "nextForwardToken": next_forward,
            "nextBackwardToken": next_backward,
        }

    def filter_log_events(self, params: dict[str, Any]) -> dict[str, Any]:
        group = self._group_name(params)
        if "logStreamNames" in params and "logStreamNamePrefix" in params:
            raise LogsInvalidParameter(
                "logStreamNames and logStreamNamePrefix are mutually exclusive parameters."
            )
        try:
            matches = compile_filter_pattern(params.get("filterPattern", ""))
        except FilterPatternError as error:
            raise LogsInvalidParameter(str(error)) from error
        names = set(params.get("logStreamNames", []))
        prefix = params.get("logStreamNamePrefix", "")
        stream_ids = [
            row["id"]
            for row in self.store.streams(group)
            if row["name"].startswith(prefix) and (not names or row["name"] in names)
        ]
        if "nextToken" in params:
            state = decode_token(params["nextToken"])
            if state is None or state.get("direction") not in ("f", "b") or not _is_position(state.get("at")):
                raise LogsInvalidParameter(_INVALID_TOKEN)
            forward, position = state["direction"] == "f", tuple(state["at"])
        elif params.get("startFromHead", True):
            forward, position = True, (-(2**62), 0)
        else:
            forward, position = False, (2**62, 0)
        candidates = self.store.events(
            stream_ids,
            start=position,
            forward=forward,
            min_time=params.get("startTime"),
            max_time=params.get("endTime"),
        )
        scanned = _Counted(candidates)
        matching = (event for event in scanned if matches(event.message))
        events, following = _page(matching, params.get("limit", DEFAULT_EVENTS_LIMIT))
        if following is None and not scanned.exhausted_budget:
            following = next(matching, None)
        next_token = None
        if following is not None:
            resume = following.position if forward else following.next_position
            next_token = encode_token({"direction": "f" if forward else "b", "at": list(resume)})
        elif scanned.exhausted_budget and scanned.last is not None:
            resume = scanned.last.next_position if forward else scanned.last.position
            next_token = encode_token({"direction": "f" if forward else "b", "at": list(resume)})
        return {
            "events": [
                {
                    "logStreamName": event.stream_name,
                    "timestamp": event.timestamp,
                    "message": event.message,
                    "ingestionTime": event.ingestion_time,
                    "eventId": f"{event.id:056d}",
                }
                for event in events
            ],
            "searchedLogStreams": [],
            "nextToken": next_token,
        }

    def _group_name(self, params: dict[str, Any]) -> str:
        """The group a request names by ``logGroupName`` or ``logGroupIdentifier`` (a name or an ARN)."""
        name = params.get("logGroupName")
        identifier = params.get("logGroupIdentifier")
        if name is not None and identifier is not None:
            raise LogsInvalidParameter(
                "logGroupName and logGroupIdentifier are mutually exclusive parameters."
            )
        if name is None and identifier is None:
            raise LogsInvalidParameter("Either logGroupName or logGroupIdentifier must be specified.")
        return name if name is not None else _group_name_of(identifier)


class _Counted:
    """Events read, at most ``FILTER_SCAN_BUDGET`` of them, remembering the last one."""

    def __init__(self, events: Iterator[StoredEvent]) -> None:
        self._events = events
        self.count = 0
        self.last: StoredEvent | None = None

    @property
    def exhausted_budget(self) -> bool:
        return self.count >= FILTER_SCAN_BUDGET

    def __iter__(self) -> Iterator[StoredEvent]:
        for event in self._events:
            self.count += 1
            self.last = event
            yield event
            if self.exhausted_budget:
                return


def _page(events: Iterator[StoredEvent], limit: int) -> tuple[list[StoredEvent], StoredEvent | None]:
    """Up to ``limit`` events and ``MAX_PAGE_BYTES`` bytes from ``events``, and the one read that did not
    fit, if any."""
    page: list[StoredEvent] = []
    size = 0
    for event in events:
        size += len(event.message.encode()) + EVENT_OVERHEAD_BYTES
        if size > MAX_PAGE_BYTES:
            return page, event
        page.append(event)
        if len(page) >= limit:
            break
    return page, None


def _group_name_of(identifier: str) -> str:
    match = _GROUP_ARN.fullmatch(identifier)
    return match.group(1) if match else identifier


def _sequence_token(uploads: int) -> str:
    return f"{uploads:056d}"


def _stream_token(direction: str, position: Position) -> str:
    timestamp, event_id = position
    return f"{direction}/{max(timestamp, 0):020d}{event_id:036d}"


def _parse_stream_token(token: str) -> tuple[bool, Position]:
    match = _STREAM_TOKEN.fullmatch(token)
    if match is None:
        raise LogsInvalidParameter(_INVALID_TOKEN)
    return match.group(1) == "f", (int(match.group(2)), int(match.group(3)))


def _is_position(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(part, int) for part in value)
