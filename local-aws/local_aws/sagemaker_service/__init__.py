"""The local SageMaker service: SageMaker (Ground Truth labeling jobs) and CloudWatch Logs over HTTP.

Run it with ``python -m local_aws.sagemaker_service --port N [--data-dir D]``; ``app.create_app`` builds the
Starlette app, ``embedded.EmbeddedService`` runs it inside a process, ``log_store.LogStore`` lets job code
write CloudWatch log events directly. Nothing is imported here, so a worker process starts light.
"""
