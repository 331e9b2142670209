"""``python -m local_aws workers ...`` as a user runs it: on the state file of LOCAL_AWS_DATA_DIR, no stack
running, passwords from standard input, never echoed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.store import StateDb
from local_aws.workforce.accounts import WorkerAccounts
from local_aws.workforce.teams import WorkforceStore, WorkteamStore
from tests.local_aws.conftest import REPO_ROOT, LocalStack

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def stack(tmp_path: Path) -> LocalStack:
    return LocalStack(LocalAwsConfig(data_dir=tmp_path / "data"))


def workers(stack: LocalStack, *arguments: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "local_aws", "workers", *arguments],
        cwd=REPO_ROOT,
        env=stack.environment(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    for password in (PASSWORD, NEW_PASSWORD):
        assert password not in result.stdout + result.stderr
    return result


def accounts_of(stack: LocalStack) -> WorkerAccounts:
    return WorkerAccounts(StateDb(stack.config.state_db), stack.config.region)


def test_add_creates_an_account_that_signs_in_with_its_password(stack: LocalStack) -> None:
    result = workers(stack, "add", "alice", "--team", "birders", "--password-stdin", stdin=PASSWORD + "\n")

    assert result.returncode == 0, result.stderr
    account = accounts_of(stack).verify("alice", PASSWORD)
    assert account is not None
    assert account.teams == ("birders",)
    assert f"Added worker alice (worker id {account.worker_id}) to team birders." in result.stdout
    assert "warning: there is no workteam 'birders' yet" in result.stderr
    assert stack.config.state_db.is_file()


def test_add_to_an_existing_team_does_not_warn(stack: LocalStack) -> None:
    db = StateDb(stack.config.state_db)
    WorkforceStore(db, stack.config).ensure()
    WorkteamStore(db, stack.config).create("Birders", "default", "Birds", [{"OidcMemberDefinition": {}}])

    result = workers(stack, "add", "alice", "--team", "birders", "--password-stdin", stdin=PASSWORD)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert accounts_of(stack).get("alice").teams == ("Birders",)


def test_add_of_an_existing_account_adds_it_to_the_team_and_keeps_its_password(stack: LocalStack) -> None:
    workers(stack, "add", "alice", "--team", "birders", "--password-stdin", stdin=PASSWORD)

    result = workers(stack, "add", "Alice", "--team", "owlers", "--password-stdin", stdin=NEW_PASSWORD)

    assert result.returncode == 0, result.stderr
    assert "Worker alice exists; added to team owlers" in result.stdout
    account = accounts_of(stack).verify("alice", PASSWORD)
    assert account is not None
    assert account.teams == ("birders", "owlers")


def test_list_shows_names_worker_ids_and_teams_never_hashes(stack: LocalStack) -> None:
    workers(stack, "add", "alice", "--team", "birders", "--password-stdin", stdin=PASSWORD)
    workers(stack, "add", "bob", "--team", "owlers", "--password-stdin", stdin=PASSWORD)
    workers(stack, "add", "bob", "--team", "birders")
    alice, bob = accounts_of(stack).list()

    everyone = workers(stack, "list")
    owlers = workers(stack, "list", "--team", "Owlers")
    nobody = workers(stack, "list", "--team", "ravens")

    assert everyone.returncode == owlers.returncode == nobody.returncode == 0
    lines = everyone.stdout.splitlines()
    assert lines[0].split() == ["NAME", "WORKER", "ID", "TEAMS"]
    assert lines[1].split() == ["alice", alice.worker_id, "birders"]
    assert lines[2].split() == ["bob", bob.worker_id, "birders,", "owlers"]
    assert [line.split()[0] for line in owlers.stdout.splitlines()] == ["NAME", "bob"]
    assert nobody.stdout == "No worker accounts in team ravens.\n"
    assert "$argon2" not in everyone.stdout


def test_remove_with_a_team_only_leaves_the_team(stack: LocalStack) -> None:
    workers(stack, "add", "alice", "--team", "birders", "--password-stdin", stdin=PASSWORD)
    workers(stack, "add", "alice", "--team", "owlers")

    left = workers(stack, "remove", "alice", "--team", "birders")
    again = workers(stack, "remove", "alice", "--team", "birders")

    assert left.returncode == 0, left.stderr
    assert left.stdout == "Removed worker alice from team birders.\n"
    assert accounts_of(stack).get("alice").teams == ("owlers",)
    assert again.returncode == 1
    assert again.stderr == "error: worker 'alice' is not in team 'birders'\n"


def test_remove_deletes_the_account(stack: LocalStack) -> None:
    workers(stack, "add", "alice", "--team", "birders", "--password-stdin", stdin=PASSWORD)

    removed = workers(stack, "remove", "alice")
    again = workers(stack, "remove", "alice")

    assert removed.returncode == 0, removed.stderr
    assert accounts_of(stack).get("alice") is None
    assert accounts_of(stack).list("birders") == []
    assert again.returncode == 1
    assert again.stderr == "error: worker 'alice': no such account\n"


def test_passwd_changes_the_password(stack: LocalStack) -> None:
    workers(stack, "add", "alice", "--team", "birders", "--password-stdin", stdin=PASSWORD)

    result = workers(stack, "passwd", "alice", "--password-stdin", stdin=NEW_PASSWORD + "\n")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "Changed the password of worker alice.\n"
    assert accounts_of(stack).verify("alice", PASSWORD) is None
    assert accounts_of(stack).verify("alice", NEW_PASSWORD) is not None


@pytest.mark.parametrize(
    ("arguments", "stdin", "message"),
    [
        (("add", "alice smith", "--team", "birders"), PASSWORD, "worker name 'alice smith': only letters"),
        (("add", "alice", "--team", "bird watchers"), PASSWORD, "team 'bird watchers': not a workteam name"),
        (("add", "alice", "--team", "birders"), "too-short", "password: too short"),
        (("add", "alice", "--team", "birders"), "", "--password-stdin: standard input has no password"),
        (("passwd", "ghost"), PASSWORD, "worker 'ghost': no such account"),
    ],
)
def test_a_refused_command_exits_1_naming_the_input(
    stack: LocalStack, arguments: tuple[str, ...], stdin: str, message: str
) -> None:
    result = workers(stack, *arguments, "--password-stdin", stdin=stdin)

    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {message}")
    assert result.stdout == ""
    assert accounts_of(stack).list() == []


def test_bad_usage_exits_2(stack: LocalStack) -> None:
    assert workers(stack).returncode == 2
    assert workers(stack, "add", "alice").returncode == 2  # --team is required
