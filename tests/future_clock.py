"""A pytest plugin that moves this process's clock ahead: ``pytest -p tests.future_clock``.

``GTOD_TEST_CLOCK_SHIFT_DAYS`` days (365 unless set) are added to the wall clock, which keeps ticking, for the
whole session: ``time.time``, ``datetime.now`` and everything built on them, in every thread of the process
(the in-process moto servers and the embedded SageMaker service included). Subprocesses keep the real clock,
so only tests whose AWS stand-ins run in process are run this way: those marked ``calendar``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

SHIFT_VARIABLE = "GTOD_TEST_CLOCK_SHIFT_DAYS"
_traveller = time_machine.travel(
    datetime.now(UTC) + timedelta(days=int(os.environ.get(SHIFT_VARIABLE, "365"))), tick=True
)


def pytest_configure(config: pytest.Config) -> None:
    _traveller.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    _traveller.stop()


def pytest_report_header(config: pytest.Config) -> str:
    return f"future clock: now {datetime.now(UTC):%Y-%m-%dT%H:%M:%S}Z"
