"""The DAG's section of Airflow's configuration, ``[ground_truth_object_detection]``: its name, and the
environment variable that sets each of its options."""

from __future__ import annotations

CONFIG_SECTION = "ground_truth_object_detection"


def env_variable(option: str) -> str:
    """The environment variable that sets ``[ground_truth_object_detection] option``."""
    return f"AIRFLOW__{CONFIG_SECTION.upper()}__{option.upper()}"
