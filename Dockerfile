# The Airflow image the compose file runs: the official image plus this project's pinned requirements.
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt constraints.txt /opt/project/
RUN pip install --no-cache-dir -r /opt/project/requirements.txt -c /opt/project/constraints.txt
