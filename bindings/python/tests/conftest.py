from __future__ import annotations

import os
from pathlib import Path

import pytest

import sessiondb


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return os.path.join(tmp_path, "sessions.db")


@pytest.fixture
def store(db_path: str) -> sessiondb.Store:
    return sessiondb.Store(db_path)
