"""Local worker accounts: argon2id hashes only, sign-in checks, name and password rules, team memberships."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.store import StateDb
from local_aws.workforce.accounts import WorkerAccounts
from local_aws.workforce.passwords import Passwords
from local_aws.workforce.teams import WorkforceStore, WorkteamStore

PASSWORD = "correct horse battery staple"
# Cheaper than the defaults, for tests that hash many times; still argon2id.
QUICK_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def db(tmp_path: Path) -> StateDb:
    return StateDb(tmp_path / "state.sqlite")


@pytest.fixture
def accounts(db: StateDb) -> WorkerAccounts:
    return WorkerAccounts(db, "eu-west-1", passwords=Passwords(QUICK_HASHER))


def stored_hash(db: StateDb, name: str) -> str:
    return (
        db.connection()
        .execute("SELECT password_hash FROM worker_accounts WHERE name = ?", (name,))
        .fetchone()[0]
    )


def test_only_an_argon2id_hash_of_the_password_is_stored(db: StateDb) -> None:
    WorkerAccounts(db, "us-east-1").add("alice", PASSWORD, "birders")

    password_hash = stored_hash(db, "alice")
    assert password_hash.startswith("$argon2id$")
    assert PASSWORD not in password_hash
    dump = "\n".join(db.connection().iterdump())
    assert PASSWORD not in dump


def test_an_account_has_a_private_worker_id_and_a_cognito_sub(accounts: WorkerAccounts) -> None:
    alice = accounts.add("alice", PASSWORD, "Birders")
    bob = accounts.add("bob", PASSWORD, "birders")

    assert re.fullmatch(r"private\.eu-west-1\.[0-9a-f]{26}", alice.worker_id)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", alice.sub)
    assert alice.worker_id != bob.worker_id
    assert alice.sub != bob.sub
    assert alice.teams == ("birders",)
    assert accounts.get("alice") == alice


def test_verify_answers_the_account_only_for_its_password(accounts: WorkerAccounts) -> None:
    alice = accounts.add("Alice", PASSWORD, "birders")

    assert accounts.verify("Alice", PASSWORD) == alice
    assert accounts.verify("alice", PASSWORD) == alice  # names are found regardless of case
    assert accounts.verify("Alice", PASSWORD + "!") is None
    assert accounts.verify("Alice", "") is None
    assert accounts.verify("mallory", PASSWORD) is None


def test_an_unknown_name_is_still_checked_against_a_hash(accounts: WorkerAccounts) -> None:
    verified: list[str] = []

    class CountingHasher(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            verified.append(str(hash))
            return super().verify(hash, password)

    counting = WorkerAccounts(accounts.db, accounts.region, passwords=Passwords(CountingHasher(time_cost=1)))

    assert counting.verify("nobody", PASSWORD) is None
    assert len(verified) == 1
    assert verified[0].startswith("$argon2id$")


def test_a_hash_made_with_other_parameters_is_replaced_at_sign_in(db: StateDb) -> None:
    old = WorkerAccounts(db, "us-east-1", passwords=Passwords(QUICK_HASHER))
    old.add("alice", PASSWORD, "birders")
    old_hash = stored_hash(db, "alice")
    current = WorkerAccounts(db, "us-east-1")

    assert current.verify("alice", PASSWORD) is not None
    new_hash = stored_hash(db, "alice")
    assert new_hash != old_hash
    assert not current.passwords.needs_rehash(new_hash)
    assert current.verify("alice", PASSWORD) is not None
    assert stored_hash(db, "alice") == new_hash  # no further rehash
    # A wrong password changes nothing.
    assert old.verify("alice", "wrong password!!") is None
    assert stored_hash(db, "alice") == new_hash


def test_set_password_replaces_the_old_one(accounts: WorkerAccounts) -> None:
    accounts.add("alice", PASSWORD, "birders")

    accounts.set_password("ALICE", "a brand new passphrase")

    assert accounts.verify("alice", PASSWORD) is None
    assert accounts.verify("alice", "a brand new passphrase") is not None


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "worker name: must not be empty"),
        ("a" * 65, "longer than 64 characters"),
        ("alice smith", "worker name 'alice smith': only letters, digits and the characters . _ @ + -"),
        ("alice/../x", "worker name 'alice/../x': only letters"),
        ("älice", "worker name 'älice': only letters, digits"),
    ],
)
def test_a_bad_name_is_refused_with_a_message_naming_it(
    accounts: WorkerAccounts, name: str, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        accounts.add(name, PASSWORD, "birders")
    assert accounts.list() == []


def test_names_of_64_allowed_characters_are_accepted(accounts: WorkerAccounts) -> None:
    for name in ("a" * 64, "alice.smith+labeling@example.com", "b_o-b"):
        assert accounts.add(name, PASSWORD, "birders").name == name


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("h0rse-9", "password: too short, it must be at least 12 characters long"),
        ("x" * 257, "password: too long, it must be at most 256 characters long"),
    ],
)
def test_a_bad_password_is_refused_without_repeating_it(
    accounts: WorkerAccounts, password: str, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        accounts.add("alice", password, "birders")
    assert password not in str(raised.value)
    assert accounts.get("alice") is None

    accounts.add("bob", PASSWORD, "birders")
    with pytest.raises(ValueError, match=re.escape(message)):
        accounts.set_password("bob", password)
    assert accounts.verify("bob", PASSWORD) is not None


def test_a_name_is_taken_in_any_case(accounts: WorkerAccounts) -> None:
    accounts.add("Alice", PASSWORD, "birders")

    with pytest.raises(
        ValueError, match=re.escape("worker name 'alice': the account 'Alice' exists already")
    ):
        accounts.add("alice", PASSWORD, "owlers")
    assert [account.name for account in accounts.list()] == ["Alice"]
    assert accounts.get("alice").teams == ("birders",)


def test_a_team_must_be_a_workteam_name(accounts: WorkerAccounts) -> None:
    with pytest.raises(ValueError, match=re.escape("team 'bird watchers': not a workteam name")):
        accounts.add("alice", PASSWORD, "bird watchers")


def test_memberships_name_teams_before_and_after_they_exist(db: StateDb, accounts: WorkerAccounts) -> None:
    accounts.add("alice", PASSWORD, "Birders")
    accounts.add("bob", PASSWORD, "owlers")
    accounts.add_to_team("bob", "BIRDERS")
    accounts.add_to_team("bob", "birders")  # twice changes nothing

    assert [account.name for account in accounts.list("birders")] == ["alice", "bob"]
    assert [account.name for account in accounts.list("Owlers")] == ["bob"]
    assert accounts.get("bob").teams == ("birders", "owlers")
    config = LocalAwsConfig(data_dir=db.path.parent)
    WorkforceStore(db, config).ensure()
    WorkteamStore(db, config).create(
        "Birders", "default", "Birds", [{"OidcMemberDefinition": {"Groups": ["g"]}}]
    )
    assert accounts.get("bob").teams == ("Birders", "owlers")  # the team's own spelling, once it exists


def test_remove_from_team_leaves_the_account(accounts: WorkerAccounts) -> None:
    accounts.add("alice", PASSWORD, "birders")
    accounts.add_to_team("alice", "owlers")

    assert accounts.remove_from_team("alice", "Birders").teams == ("owlers",)
    assert accounts.list("birders") == []
    with pytest.raises(ValueError, match=re.escape("worker 'alice' is not in team 'birders'")):
        accounts.remove_from_team("alice", "birders")


def test_removing_an_account_ends_its_memberships(db: StateDb, accounts: WorkerAccounts) -> None:
    accounts.add("alice", PASSWORD, "birders")
    accounts.add_to_team("alice", "owlers")
    accounts.add("bob", PASSWORD, "birders")

    accounts.remove("Alice")

    assert accounts.get("alice") is None
    assert accounts.verify("alice", PASSWORD) is None
    assert [account.name for account in accounts.list("birders")] == ["bob"]
    assert accounts.list("owlers") == []
    members = db.connection().execute("SELECT worker_name FROM team_members").fetchall()
    assert [row[0] for row in members] == ["bob"]


def test_an_unknown_account_is_an_error_naming_it(accounts: WorkerAccounts) -> None:
    for call in (
        lambda: accounts.remove("ghost"),
        lambda: accounts.set_password("ghost", PASSWORD),
        lambda: accounts.add_to_team("ghost", "birders"),
        lambda: accounts.remove_from_team("ghost", "birders"),
    ):
        with pytest.raises(ValueError, match=re.escape("worker 'ghost': no such account")):
            call()
