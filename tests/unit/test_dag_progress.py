"""make demo's progress lines: one per task as it ends, a note when one defers, counters when they change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from scripts import dag_progress


class FakeSageMaker:
    def __init__(self) -> None:
        self.counters = {
            "TotalLabeled": 0,
            "HumanLabeled": 0,
            "MachineLabeled": 0,
            "FailedNonRetryableError": 0,
            "Unlabeled": 10,
        }

    def list_labeling_jobs(self, **_: Any) -> dict[str, Any]:
        job = {"LabelingJobName": "job-1", "LabelingJobStatus": "InProgress", "LabelCounters": self.counters}
        return {"LabelingJobSummaryList": [job]}


def test_each_task_is_shown_once_when_it_ends_and_failures_are_kept(monkeypatch, capsys) -> None:
    states = [("prepare.select_images", "running", None), ("label.wait", "deferred", None)]
    monkeypatch.setattr(dag_progress, "_task_states", lambda dag_id, progress: list(states))
    progress = dag_progress._Progress(datetime.now(UTC))
    sagemaker = FakeSageMaker()

    dag_progress._show("dag", progress, sagemaker)
    states[0] = ("prepare.select_images", "success", 5.25)
    dag_progress._show("dag", progress, sagemaker)
    sagemaker.counters = {**sagemaker.counters, "TotalLabeled": 4, "HumanLabeled": 4, "Unlabeled": 6}
    states[1] = ("label.wait", "failed", 61.0)
    dag_progress._show("dag", progress, sagemaker)
    dag_progress._show("dag", progress, sagemaker)

    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines if not line.startswith("    ")] == [
        "label.wait",
        "prepare.select_images",
        "label.wait",
    ]
    assert "waiting (deferred)" in lines[0] and "ok" in lines[2] and "5.2 s" in lines[2]
    counter_lines = [line for line in lines if "labeling job job-1" in line]
    assert (
        len(counter_lines) == 2
        and "4 labeled (4 by humans, 0 by machine), 0 failed, 6 to go" in counter_lines[1]
    )
    assert progress.failed == ["label.wait"]
    assert "FAILED" in next(line for line in lines if line.split()[0] == "label.wait" and "61.0 s" in line)


@pytest.mark.parametrize(("state", "text"), [(None, ""), ("success", "success")])
def test_states_read_as_their_names(state: Any, text: str) -> None:
    assert dag_progress._text(state) == text
