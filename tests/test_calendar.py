"""The tests that depend on the date still pass with the clock a year ahead.

Two tests once stamped log events with a fixed date; CloudWatch Logs drops events older than 14 days, so
they failed once the calendar passed that date. The tests marked ``calendar`` (log reading, labeling-job
timing, the DAG's dates) run here again in a pytest of their own whose clock is a year ahead, so that such a
date shows up in CI a year before the calendar gets there.
"""

import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime, timedelta

from tests.conftest import ROOT

SHIFT_DAYS = 365
MIN_CALENDAR_TESTS = 20


def test_the_calendar_tests_pass_a_year_ahead(tmp_path):
    report = tmp_path / "calendar.xml"
    command = [sys.executable, "-m", "pytest", "-m", "calendar", "-p", "tests.future_clock"]
    command += ["-p", "no:cacheprovider", f"--junitxml={report}"]
    environment = {**os.environ, "GTOD_TEST_CLOCK_SHIFT_DAYS": str(SHIFT_DAYS)}

    result = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=900)

    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    shifted = datetime.strptime(result.stdout.split("future clock: now ")[1][:19], "%Y-%m-%dT%H:%M:%S")
    expected = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=SHIFT_DAYS)
    assert abs(shifted - expected) < timedelta(minutes=10)
    suite = ElementTree.parse(report).getroot().find("testsuite")
    assert int(suite.get("tests")) >= MIN_CALENDAR_TESTS
    assert int(suite.get("failures")) == int(suite.get("errors")) == int(suite.get("skipped")) == 0
