# Two images for docker-compose.yaml, one per build target.

# airflow: the official Airflow image plus this project's pinned requirements; runs the DAG.
FROM apache/airflow:3.3.2-python3.11 AS airflow
COPY requirements.txt constraints.txt /opt/project/
RUN pip install --no-cache-dir -r /opt/project/requirements.txt -c /opt/project/constraints.txt

# local-aws: the local stack (S3 on SeaweedFS, the local SageMaker service, moto), listening on every
# interface of its container, its data in the volume at /data. torch and torchvision are the CPU builds.
FROM python:3.11-slim-bookworm AS local-aws
# The local_aws package without Airflow: its pinned requirements, then the package with its object-detection extra.
WORKDIR /opt/project
COPY requirements-local-aws.txt constraints.txt ./
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu \
        -r requirements-local-aws.txt -c constraints.txt
COPY local-aws ./local-aws
RUN pip install --no-cache-dir './local-aws[object-detection]' -c constraints.txt
ENV LOCAL_AWS_DATA_DIR=/data LOCAL_AWS_BIND_HOST=0.0.0.0 PYTHONUNBUFFERED=1
EXPOSE 8333 8334 8335 8336
HEALTHCHECK --interval=10s --timeout=10s --start-period=60s --retries=6 CMD ["python", "-m", "local_aws", "status"]
CMD ["python", "-m", "local_aws", "serve"]
