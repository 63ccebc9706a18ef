"""What this build of the package opens: PostgreSQL only when built with it.

``run-tests.sh`` runs this file twice: on the default build (``pip install``'s, without
PostgreSQL) with ``SESSIONDB_EXPECT_POSTGRES=0``, then on the build with ``--features
postgres`` that the other tests use, with ``SESSIONDB_EXPECT_POSTGRES=1``."""

from __future__ import annotations

import os

import pytest

import sessiondb

# No server listens on port 1: a build with PostgreSQL gets as far as connecting.
URL = "postgresql://nobody@127.0.0.1:1/nothing"


def test_the_build_is_the_one_expected():
    expected = os.environ.get("SESSIONDB_EXPECT_POSTGRES")
    if expected is None:
        if os.environ.get("CI") == "true":
            pytest.fail("SESSIONDB_EXPECT_POSTGRES is unset under CI=true (run-tests.sh sets it)")
        pytest.skip("SESSIONDB_EXPECT_POSTGRES is unset: which build this is was not said")
    assert sessiondb.POSTGRES_SUPPORT is (expected == "1")


def test_a_postgres_url_says_how_to_build_with_postgres_or_reaches_the_server(tmp_path):
    with pytest.raises(sessiondb.Error) as raised:
        sessiondb.Store(URL)
    message = str(raised.value)
    if sessiondb.POSTGRES_SUPPORT:
        assert type(raised.value) is sessiondb.PoolError, message
        assert message == (
            f"connection pool: {URL}: cannot connect: error connecting to server: "
            "Connection refused (os error 111)"
        )
    else:
        assert type(raised.value) is sessiondb.InvalidInput
        assert message == (
            f"invalid input: {URL}: this sessiondb package was built without PostgreSQL; "
            'reinstall it from source with MATURIN_PEP517_ARGS="--features postgres" pip install …'
        )
    # A path still opens, whatever the build.
    store = sessiondb.Store(tmp_path / "s.db")
    store.add_user_message("s", "hi")
    assert [m["content"] for m in store.chat_history("s")] == ["hi"]
