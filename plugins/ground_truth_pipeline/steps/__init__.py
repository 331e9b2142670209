"""What each task of the DAG does, one module per task group, callable without a running Airflow."""
