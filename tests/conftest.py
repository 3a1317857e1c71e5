"""Shared pytest fixtures: the repository root and the real-data folder (skipped when absent)."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Real instrument exports live beside the checkout (never copied into the repo).
REALDATA = REPO_ROOT / ".." / "shared" / "realdata"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (folder holding pyproject.toml)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def realdata() -> Path:
    """``<repo>/../shared/realdata``; the test is skipped when it is not there."""
    if not REALDATA.is_dir():
        pytest.skip(f"real data folder {REALDATA} not available")
    return REALDATA.resolve()


@pytest.fixture(scope="session")
def ftir_generator():
    """``sample_data/generate_ftir.py`` as a module (its spectrum builders, for generated test cases)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate_ftir", REPO_ROOT / "sample_data" / "generate_ftir.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
