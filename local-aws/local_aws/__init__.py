"""The local stack: an offline stand-in for the AWS services the pipeline uses, which really labels.

S3 is SeaweedFS; SageMaker (Ground Truth labeling jobs), the SageMaker runtime and CloudWatch Logs are served
by this package's own HTTP service; SNS, IAM and STS by moto's server. ``python -m local_aws up`` starts all
three on 127.0.0.1 with their data under one directory. Nothing here imports Airflow or the pipeline's code.
"""
