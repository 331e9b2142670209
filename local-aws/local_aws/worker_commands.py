"""``python -m local_aws workers ...``: the local worker accounts that sign in to the worker portal and label
for private workteams.

The commands work on the service's SQLite file (``LocalAwsConfig.state_db``) directly, whether the stack runs
or not. A password is read with getpass, twice to catch a typo, or with ``--password-stdin`` as the first line
of standard input (for scripts); it is never printed, and only its argon2id hash is stored. A team may be
named before CreateWorkteam creates it: the command warns, and the worker is in the team once it exists.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.store import StateDb
from local_aws.workforce.accounts import WorkerAccount, WorkerAccounts
from local_aws.workforce.teams import WorkteamStore


class WorkerCommandError(Exception):
    """A command that cannot be done; the message names the input and what is wrong."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    """The ``workers`` command and its subcommands, under the CLI's ``commands``."""
    workers = commands.add_parser(
        "workers",
        help="manage the local worker accounts of private workteams (they sign in to the worker portal)",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    subcommands = workers.add_subparsers(dest="workers_command", required=True, metavar="SUBCOMMAND")
    password_stdin = argparse.ArgumentParser(add_help=False)
    password_stdin.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input instead of asking for it",
    )
    add = subcommands.add_parser(
        "add",
        parents=[password_stdin],
        help="create an account in a team, or add an existing account to another team",
    )
    add.add_argument("name", metavar="NAME", help="what the worker signs in with")
    add.add_argument("--team", required=True, help="the workteam's name (WorkteamName)")
    listing = subcommands.add_parser("list", help="list accounts: name, worker id, teams")
    listing.add_argument("--team", help="only this team's members")
    remove = subcommands.add_parser("remove", help="delete an account, or with --team take it off one team")
    remove.add_argument("name", metavar="NAME")
    remove.add_argument("--team", help="only leave this team; the account stays")
    passwd = subcommands.add_parser("passwd", parents=[password_stdin], help="set an account's password")
    passwd.add_argument("name", metavar="NAME")


def run(config: LocalAwsConfig, arguments: argparse.Namespace) -> None:
    """Do the ``workers`` subcommand ``arguments`` name; WorkerCommandError says why it could not."""
    db = StateDb(config.state_db)
    accounts = WorkerAccounts(db, config.region)
    command = arguments.workers_command
    try:
        if command == "add":
            _add(accounts, WorkteamStore(db, config), arguments)
        elif command == "list":
            _list(accounts, arguments.team)
        elif command == "remove":
            _remove(accounts, arguments.name, arguments.team)
        else:
            _passwd(accounts, arguments)
    except ValueError as error:
        raise WorkerCommandError(str(error)) from error
    finally:
        db.close()


def _add(accounts: WorkerAccounts, teams: WorkteamStore, arguments: argparse.Namespace) -> None:
    name, team = arguments.name, arguments.team
    existing = accounts.get(name)
    if existing is None:
        account = accounts.add(name, _read_password(name, arguments.password_stdin), team)
        print(f"Added worker {account.name} (worker id {account.worker_id}) to team {team}.")
    else:
        account = accounts.add_to_team(existing.name, team)
        print(
            f"Worker {account.name} exists; added to team {team} (its password is unchanged: use"
            " `workers passwd` to change it)."
        )
    if teams.find(team) is None:
        print(
            f"warning: there is no workteam {team!r} yet; {account.name} is in it once CreateWorkteam"
            " creates it.",
            file=sys.stderr,
        )


def _list(accounts: WorkerAccounts, team: str | None) -> None:
    listed = accounts.list(team)
    if not listed:
        print("No worker accounts." if team is None else f"No worker accounts in team {team}.")
        return
    rows = [("NAME", "WORKER ID", "TEAMS"), *(_row(account) for account in listed)]
    widths = [max(len(row[column]) for row in rows) for column in range(2)]
    for row in rows:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}".rstrip())


def _row(account: WorkerAccount) -> tuple[str, str, str]:
    return account.name, account.worker_id, ", ".join(account.teams)


def _remove(accounts: WorkerAccounts, name: str, team: str | None) -> None:
    if team is None:
        accounts.remove(name)
        print(f"Removed worker {name}.")
    else:
        account = accounts.remove_from_team(name, team)
        print(f"Removed worker {account.name} from team {team}.")


def _passwd(accounts: WorkerAccounts, arguments: argparse.Namespace) -> None:
    account = accounts.get(arguments.name)
    if account is None:
        raise WorkerCommandError(f"worker {arguments.name!r}: no such account")
    accounts.set_password(account.name, _read_password(account.name, arguments.password_stdin))
    print(f"Changed the password of worker {account.name}.")


def _read_password(name: str, from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
        if not password:
            raise WorkerCommandError("--password-stdin: standard input has no password on its first line")
        return password
    password = getpass.getpass(f"Password for {name}: ")
    if getpass.getpass(f"Repeat the password for {name}: ") != password:
        raise WorkerCommandError(f"the two passwords typed for {name!r} differ; nothing was changed")
    return password
