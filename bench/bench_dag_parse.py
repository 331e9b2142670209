"""How long Airflow takes to parse the DAG file, as ``airflow dags report`` measures it.

The baseline, measured in the same run and the same way, is a one-task DAG file: the difference is what
this project's DAG file costs the DAG processor. Target: under 0.3 s. Each report runs in a fresh process;
the best and the median of the runs are printed and written to ``bench/results/dag_parse.json``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAG_FILE = "ground_truth_object_detection.py"
RUNS = 5
TARGET_S = 0.3
BASELINE_DAG = """
from datetime import datetime
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id="baseline", schedule=None, start_date=datetime(2026, 1, 1)):
    EmptyOperator(task_id="nothing")
"""


def parse_seconds(dags_folder: Path, file_name: str) -> float:
    env = os.environ | {
        "AIRFLOW_HOME": str(ROOT / ".airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "report", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("[{")))
    (row,) = (row for row in report if row["file"] == file_name)
    hours, minutes, seconds = row["duration"].split(":")
    return timedelta(hours=int(hours), minutes=int(minutes), seconds=float(seconds)).total_seconds()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="baseline-dag-") as folder:
        baseline_file = Path(folder) / "baseline_dag.py"
        baseline_file.write_text(BASELINE_DAG)
        baseline = [parse_seconds(Path(folder), baseline_file.name) for _ in range(RUNS)]
    project = [parse_seconds(ROOT / "dags", DAG_FILE) for _ in range(RUNS)]
    results = {
        "benchmark": "DAG file parse duration (airflow dags report)",
        "runs": RUNS,
        "project_dag_best_s": min(project),
        "project_dag_median_s": statistics.median(project),
        "baseline_one_task_dag_best_s": min(baseline),
        "baseline_one_task_dag_median_s": statistics.median(baseline),
        "target_s": TARGET_S,
        "target_met": statistics.median(project) < TARGET_S,
    }
    print(f"DAG parse duration over {RUNS} fresh reports (airflow dags report)")
    print(f"  {DAG_FILE}: best {min(project):.3f} s, median {statistics.median(project):.3f} s")
    print(f"  one-task baseline DAG: best {min(baseline):.3f} s, median {statistics.median(baseline):.3f} s")
    print(f"  target < {TARGET_S} s: {'met' if results['target_met'] else 'NOT met'}")
    out = ROOT / "bench" / "results" / "dag_parse.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
