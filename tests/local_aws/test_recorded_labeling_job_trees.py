"""The stack still writes the labeling-job output trees recorded in tests/fixtures/labeling_job_trees/.

The product's readers are tested on those recordings; this test runs the stack's labeling engine again on
the recorder's inputs (``tests/fixtures/record_labeling_job_trees.py``), on the real clock, and compares what
it writes with them: the same keys and the same JSON, except for what follows from the clock, which is
masked after its format is checked:

- the ``<YYYY-MM-DD_HH:MM:SS>.json`` names of worker-response files (one per object folder, so the name
  becomes ``<time>.json``) and of consolidation responses (several per iteration folder: the name becomes its
  rank in the folder, ``<time 1>.json``, ``<time 2>.json``, ..., which keeps each batch's file apart);
- each answer's ``acceptanceTime`` and ``submissionTime`` (``%Y-%m-%dT%H:%M:%S.mmmZ``): the job's simulated
  clock starts at the real time;
- each label's ``creation-date`` (``%Y-%m-%dT%H:%M:%S.ffffff``) in the output and intermediate manifests, the
  consolidation responses and ``auto_annotator_output.txt``, for the same reason.

Nothing else varies between runs, so nothing else is masked: worker ids, boxes, task times, confidences and
which objects go to humans derive from the job's name and the inputs, not from the clock or the threads. A
time in another format stays unmasked, so the comparison shows it. After a deliberate change of the format,
record the trees again (see the recorder's docstring).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.record_labeling_job_trees import DESIGNS, record
from tests.fixtures.recorded_trees import TREES, RecordedTree

FILE_TIME = r"\d{4}-\d\d-\d\d_\d\d:\d\d:\d\d"
_WORKER_RESPONSE = re.compile(rf"(annotations/worker-response/iteration-\d+/\d+/){FILE_TIME}\.json")
_CONSOLIDATION_RESPONSE = re.compile(
    rf"(annotations/consolidated-annotation/consolidation-response/iteration-\d+/)({FILE_TIME})\.json"
)
_MASKED_VALUES = {
    "acceptanceTime": re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"),
    "submissionTime": re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"),
    "creation-date": re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}"),
}


def _masked_keys(keys: list[str]) -> dict[str, str]:
    """Each key's masked form; consolidation responses are numbered by time within their folder."""
    ranks: dict[str, list[str]] = {}
    for key in keys:
        if match := _CONSOLIDATION_RESPONSE.fullmatch(key):
            ranks.setdefault(match[1], []).append(match[2])
    masked = {}
    for key in keys:
        if match := _WORKER_RESPONSE.fullmatch(key):
            masked[key] = f"{match[1]}<time>.json"
        elif match := _CONSOLIDATION_RESPONSE.fullmatch(key):
            masked[key] = f"{match[1]}<time {sorted(ranks[match[1]]).index(match[2]) + 1}>.json"
        else:
            masked[key] = key
    assert len(set(masked.values())) == len(keys), "two files of one folder have the same time"
    return masked


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            name: "<time>"
            if name in _MASKED_VALUES and isinstance(item, str) and _MASKED_VALUES[name].fullmatch(item)
            else _mask(item)
            for name, item in value.items()
        }
    if isinstance(value, list):
        return [_mask(item) for item in value]
    return value


def _masked_content(key: str, data: bytes) -> Any:
    """A file's content with the clock's values masked: JSON, JSON Lines, or auto-annotator lines."""
    if key.endswith(".json"):
        return _mask(json.loads(data))
    if key.endswith(".manifest"):
        return [_mask(json.loads(line)) for line in data.decode().splitlines()]
    if key.endswith(".txt"):
        tokens_and_labels = (line.split(" ", 1) for line in data.decode().splitlines())
        return [[token, _mask(json.loads(label))] for token, label in tokens_and_labels]
    return data


def _masked_tree(folder: Path) -> dict[str, Any]:
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    keys = _masked_keys(sorted(files))
    return {keys[key]: _masked_content(key, data) for key, data in files.items()}


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_the_stack_writes_the_recorded_tree(name, tmp_path):
    record(name, tmp_path, frozen_clock=False)

    written, recorded = _masked_tree(tmp_path / name), _masked_tree(TREES / name)
    assert sorted(written) == sorted(recorded)
    for key in recorded:
        assert written[key] == recorded[key], key
    assert json.loads((tmp_path / f"{name}.json").read_text()) == RecordedTree.load(name).facts


def test_masking_hides_only_times_in_the_expected_format():
    answer = {"submissionTime": "2026-11-26T10:01:24Z", "acceptanceTime": "2026-11-26T10:01:15.862Z"}
    assert _mask({"answers": [answer], "creation-date": "2026-11-26T10:04:19.734000"}) == {
        "answers": [{"submissionTime": "2026-11-26T10:01:24Z", "acceptanceTime": "<time>"}],
        "creation-date": "<time>",
    }
    consolidations = "annotations/consolidated-annotation/consolidation-response/iteration-2/"
    workers = "annotations/worker-response/iteration-1/7/"
    keys = [
        f"{consolidations}2026-11-26_10:04:19.json",
        f"{consolidations}2026-11-26_10:02:51.json",
        f"{workers}2026-11-26_10:01:24.json",
        f"{workers}2026-11-26T10:01:24.json",
    ]
    assert list(_masked_keys(keys).values()) == [
        f"{consolidations}<time 2>.json",
        f"{consolidations}<time 1>.json",
        f"{workers}<time>.json",
        f"{workers}2026-11-26T10:01:24.json",
    ]
