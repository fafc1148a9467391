from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def requires_shared(path: Path):
    """Reference data lives beside the repo (../shared), never inside it."""
    return pytest.mark.skipif(not path.exists(), reason=f"reference data not found at {path}")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
