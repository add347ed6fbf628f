"""Shared test fixtures: an isolated cache per test, and skips that CI turns into failures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"  # exists in a session and in CI, never on a user's machine
MNIST_T10K = SHARED / "data" / "mnist-t10k"
IN_CI = os.environ.get("CI", "").lower() == "true"

# The tests run small networks on a few shared cores: one intra-op thread is several times faster
# there than torch's default (which oversubscribes the cores) and makes run times predictable.
torch.set_num_threads(1)


def require(condition: bool, reason: str) -> None:
    """Skip when something only CI installs is missing; under CI=true that is a failure, never a skip."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this test must run, not skip)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own result cache, so no test reads another's (or the user's) results."""
    folder = tmp_path / "vg-cache"
    monkeypatch.setenv("VG_CACHE_DIR", str(folder))
    return folder
