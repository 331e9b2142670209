"""SageMaker Ground Truth labeling jobs in the Amazon provider's style: hook, operator, sensor and trigger.

The provider has no Ground Truth operator. Submodules are imported on their own so that importing one
(for example the operator in a DAG file) does not pull in the others.
"""
