from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def requires_shared(path: Path):
    """Reference data lives beside the repo (../shared), never inside it."""
    return pytest.mark.skipif(not path.exists(), reason=f"reference data not found at {path}")


@pytest.fixture(autouse=True)
def isolated_model_cache(tmp_path_factory, monkeypatch):
    """Every test gets an empty model cache and no network: nothing is downloaded from a
    hub, and the user's own cache is never touched."""
    home = tmp_path_factory.mktemp("clearfill-home")
    monkeypatch.setenv("CLEARFILL_HOME", str(home))
    monkeypatch.setenv("CLEARFILL_OFFLINE", "1")
    return home


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def empty_model_pool():
    """Each test starts with no models loaded (the pool is process-wide) and leaves none."""
    from clearfill.models.pool import POOL

    POOL.clear()
    yield
    POOL.clear()
