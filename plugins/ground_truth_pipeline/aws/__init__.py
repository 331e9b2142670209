"""SageMaker in the Amazon provider's style: Ground Truth labeling jobs (hook, operator, sensor and trigger),
and the provider's training, model, transform and endpoint operators made safe to retry, with their hook.

The provider has no Ground Truth operator. Submodules are imported on their own so that importing one
(for example the operator in a DAG file) does not pull in the others.
"""
