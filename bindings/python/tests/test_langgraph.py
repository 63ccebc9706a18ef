"""sessiondb.langgraph.SessiondbSaver against LangGraph's own conformance suite and real
graphs (docs/design.md, "LangGraph checkpoints")."""

from __future__ import annotations

import os

import pytest

langgraph = pytest.importorskip("langgraph.checkpoint.conformance")
if os.environ.get("CI") == "true" and langgraph is None:  # pragma: no cover
    pytest.fail("langgraph-checkpoint-conformance is missing under CI")

from langgraph.checkpoint.conformance import checkpointer_test, validate  # noqa: E402
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES  # noqa: E402

import sessiondb  # noqa: E402
from sessiondb.langgraph import SessiondbSaver  # noqa: E402


async def run_conformance(target: str) -> None:
    @checkpointer_test(name="SessiondbSaver")
    async def factory():
        yield SessiondbSaver(sessiondb.Store(target))

    report = await validate(factory)
    failures = {
        name: result.failures for name, result in report.results.items() if not result.passed
    }
    assert failures == {}
    assert {name for name, r in report.results.items() if r.detected} == {
        c.value for c in ALL_CAPABILITIES
    }
    assert all(r.tests_failed == 0 and r.tests_passed > 0 for r in report.results.values())


async def test_conformance_suite_passes_every_capability(db_path: str) -> None:
    await run_conformance(db_path)
