"""A labeling job's CloudWatch log, as Ground Truth keeps it: group ``/aws/sagemaker/LabelingJobs``, one
stream per job, named after it."""

from __future__ import annotations

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.log_store import LogStore

LOG_GROUP = "/aws/sagemaker/LabelingJobs"


class LabelingJobLog:
    """Writes each message as one event of the job's stream, stored at once so the log can be tailed."""

    def __init__(self, config: LocalAwsConfig, job_name: str) -> None:
        self.store = LogStore(config.state_db)
        self.stream = job_name

    def __call__(self, message: str) -> None:
        self.store.put_events(LOG_GROUP, self.stream, [message])
