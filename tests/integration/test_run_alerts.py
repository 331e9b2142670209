"""The run alerts inside Airflow 3.3, e-mailed to a real SMTP server.

The run-failure alert runs where Airflow runs a DAG's ``on_failure_callback``: in a DAG processor subprocess,
which answers the alert's question for the run's task states through the execution API. The deadline
alert goes the way Airflow's scheduler sends a missed deadline: the deadline row that a queued run gets,
``Deadline.handle_miss``, and the ``CallbackTrigger`` that the triggerer would run.
"""

from __future__ import annotations

import asyncio
import textwrap
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from sqlalchemy import select

from tests.smtp_inbox import smtp_inbox

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

DAG_ID = "run_alert_probe"
PROBE_DAG = textwrap.dedent(
    f"""
    from datetime import datetime

    from airflow.sdk import DAG, task

    from ground_truth_pipeline.alerts.deadline import run_deadline_alert
    from ground_truth_pipeline.alerts.notifiers import notify_run_failure

    with DAG(
        dag_id="{DAG_ID}",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        on_failure_callback=notify_run_failure,
        deadline=run_deadline_alert("2"),
    ):

        @task
        def label():
            raise ValueError("labeling job failed: {{bad}} manifest")

        @task
        def train():
            raise RuntimeError("training diverged")

        @task
        def analyse():
            return "ok"

        label()
        train()
        analyse()
    """
)


@pytest.fixture
def mailbox(monkeypatch):
    with smtp_inbox() as server:
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", server.connection_json())
        monkeypatch.setenv("AIRFLOW__GROUND_TRUTH_OBJECT_DETECTION__ALERT_EMAILS", "ops@example.com")
        monkeypatch.delenv("AIRFLOW_VAR_GROUND_TRUTH_ALERT_TOPIC_ARN", raising=False)
        yield server


@pytest.fixture
def probe_dag(airflow_db, tmp_path):
    """The probe DAG's file, parsed and written to the metadata DB as the DAG processor would."""
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    dag_file = tmp_path / "run_alert_probe.py"
    dag_file.write_text(PROBE_DAG)
    bag = DagBag(dag_folder=str(dag_file))
    assert bag.import_errors == {}
    sync_bag_to_db(bag, "dags-folder", None)
    return bag.dags[DAG_ID], dag_file


def run_dag_callback_in_a_dag_processor(dag_file: Path, dag_run, last_failed_ti) -> int:
    """What the scheduler asks of the DAG processor when a run fails, and the processor's exit code."""
    from airflow.api_fastapi.execution_api.app import InProcessExecutionAPI
    from airflow.callbacks.callback_requests import DagCallbackRequest, DagRunContext
    from airflow.dag_processing.processor import DagFileProcessorProcess
    from airflow.sdk.api.client import Client

    request = DagCallbackRequest(
        filepath=dag_file.name,
        dag_id=DAG_ID,
        run_id=dag_run.run_id,
        bundle_name="dags-folder",
        bundle_version=None,
        context_from_server=DagRunContext(dag_run=dag_run, last_ti=last_failed_ti),
        is_failure_callback=True,
        msg="task_failure",
    )
    client = Client(base_url=None, token="", dry_run=True, transport=InProcessExecutionAPI().transport)
    client.base_url = "http://in-process.invalid./"
    with (dag_file.parent / "processor.log").open("ab") as log_file:
        processor = DagFileProcessorProcess.start(
            id=uuid.uuid4(),
            path=dag_file,
            bundle_path=dag_file.parent,
            bundle_name="dags-folder",
            dag_file_rel_path=dag_file.name,
            callbacks=[request],
            logger=structlog.get_logger(),
            logger_filehandle=log_file,
            client=client,
        )
        deadline = time.monotonic() + 120
        while not processor.is_ready and time.monotonic() < deadline:
            processor._service_subprocess(0.1)
    return processor._exit_code


def test_a_failed_run_alerts_once_from_the_dag_processor_naming_all_its_failed_tasks(probe_dag, mailbox):
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    dag, dag_file = probe_dag
    run_id = dag.test().run_id
    # dag.test() runs the callback in process, without the supervisor that the task states come from.
    [in_process] = mailbox.received
    assert "Failed tasks (the run's tasks could not be read; this is the last to fail):" in in_process.text
    mailbox.received.clear()

    with create_session() as session:
        dag_run = session.scalars(
            select(DagRun).where(DagRun.dag_id == DAG_ID, DagRun.run_id == run_id)
        ).one()
        failed = [
            ti for ti in dag_run.get_task_instances(session=session) if ti.state == TaskInstanceState.FAILED
        ]
        last_failed = max(failed, key=lambda ti: ti.end_date)
        exit_code = run_dag_callback_in_a_dag_processor(dag_file, dag_run, last_failed)

    assert exit_code == 0, (dag_file.parent / "processor.log").read_text()[-3000:]
    [mail] = mailbox.received
    assert mail.subject == f"Airflow run failed: {DAG_ID} {run_id}"
    lines = mail.text.splitlines()
    assert lines[:3] == ["An Airflow DAG run failed.", f"DAG: {DAG_ID}", f"Run: {run_id}"]
    assert lines[3].startswith("Logical date: ")
    assert "Reason: task_failure" in lines
    failed_tasks = lines[lines.index("Failed tasks (2):") + 1 :][:2]
    assert sorted(failed_tasks) == sorted(
        [f"- {ti.task_id}, try 1" if ti is last_failed else f"- {ti.task_id}" for ti in failed]
    )
    assert {ti.task_id for ti in failed} == {"label", "train"}


def test_a_queued_run_past_its_deadline_is_alerted_through_the_triggerer_callback(probe_dag, mailbox):
    from airflow.models.deadline import Deadline
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.triggers.callback import CallbackTrigger
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    now = datetime.now(UTC)
    run_id = f"manual__{now.isoformat()}"
    with create_session() as session:
        serialized = SerializedDagModel.get_dag(DAG_ID, session=session)
        dag_run = serialized.create_dagrun(
            run_id=run_id,
            logical_date=now,
            data_interval=(now, now),
            run_after=now,
            conf={},
            run_type=DagRunType.MANUAL,
            triggered_by=DagRunTriggeredByType.TEST,
            state=DagRunState.QUEUED,
            session=session,
        )
        session.flush()
        [deadline] = session.scalars(select(Deadline).where(Deadline.dagrun_id == dag_run.id)).all()
        deadline_time = deadline.deadline_time
        assert deadline_time == dag_run.queued_at + timedelta(hours=2)

        deadline.handle_miss(session)
        trigger = CallbackTrigger(**deadline.callback.trigger.kwargs)
        session.rollback()

    async def run_trigger() -> list[dict]:
        return [event.payload async for event in trigger.run()]

    events = asyncio.run(run_trigger())

    assert events[-1]["state"] == "success", events
    [mail] = mailbox.received
    assert mail.subject == f"Airflow run past its deadline: {DAG_ID} {run_id}"
    lines = mail.text.splitlines()
    assert "State: queued" in lines
    assert f"Deadline: {deadline_time.isoformat()} (2 hours after it was queued)" in lines
