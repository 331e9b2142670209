"""Alerts about this DAG's runs: a failed task, a failed run, a run past its deadline.

Each goes to an SNS topic and to e-mail recipients (README, "Alerts"). Submodules are imported on their own:
``notifiers`` holds the failure callbacks, ``deadline`` the run deadline and its callback.
"""
