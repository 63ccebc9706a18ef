"""Python values JSON cannot hold are refused with InvalidInput naming where they sit, and
nothing is stored: cycles, runaway nesting, NaN and infinity, sets, bytes, non-text keys.
Before, a cycle or a deep dict crashed the interpreter and NaN or a set was silently changed."""

from __future__ import annotations

import datetime
import math
import subprocess
import sys

import pytest

import sessiondb


def nested(depth: int, leaf=1):
    value = leaf
    for _ in range(depth):
        value = {"k": value}
    return value


def self_containing_dict():
    c: dict = {}
    c["self"] = c
    return c


def self_containing_parts():
    parts: list = [{"type": "text", "text": "x"}]
    parts.append(parts)
    return parts


def refused(store, call, match):
    """`call` raises InvalidInput matching `match`, and the file is unchanged."""
    before = [(s["id"], s["version"]) for s in store.list_sessions()]
    with pytest.raises(sessiondb.InvalidInput, match=match):
        call()
    assert [(s["id"], s["version"]) for s in store.list_sessions()] == before


@pytest.mark.parametrize(
    "message, match",
    [
        ({"role": "user", "content": "x", "metadata": self_containing_dict()},
         r"message\.metadata\.self contains itself"),
        ({"role": "user", "content": self_containing_parts()}, r"message\.content\[1\] contains itself"),
        ({"role": "user", "content": "x", "metadata": nested(20_000)}, r"message\.metadata(\.k)+ nests deeper than 64"),
        ({"role": "user", "content": "x", "metadata": nested(200_000)}, r"nests deeper than 64 levels"),
        ({"role": "user", "content": float("nan")}, r"message\.content is nan, which JSON cannot hold"),
        ({"role": "user", "content": "x", "metadata": {"score": float("inf")}}, r"message\.metadata\.score is inf"),
        ({"role": "user", "content": "x", "metadata": {"score": -math.inf}}, r"message\.metadata\.score is -inf"),
        ({"role": "user", "content": "x", "name": float("nan")}, r"message\.name is nan"),
        ({"role": "user", "content": "x", "metadata": {"tags": {"a", "b"}}}, r"message\.metadata\.tags is a set"),
        ({"role": "user", "content": "x", "metadata": {"tags": frozenset()}}, r"message\.metadata\.tags is a set"),
        ({"role": "user", "content": b"bytes"}, r"message\.content is bytes"),
        ({"role": "user", "content": "x", "metadata": {1: "one"}}, r"message\.metadata has the key 1, not a str"),
        ({"role": "user", "content": "x", "metadata": {"when": object()}}, r"message\.metadata\.when is an object, which JSON"),
        ({"role": "user", "content": "x", "metadata": {"when": datetime.date(2026, 1, 2)}},
         r"message\.metadata\.when is a date, which JSON"),
        ({"role": "user", "content": "x", "metadata": {"n": 2**70}}, r"message\.metadata\.n is 1180591620717411303424"),
    ],
)
def test_add_message_refuses_what_json_cannot_hold(store, message, match):
    store.add_user_message("kept", "already here")
    refused(store, lambda: store.add_message("s", message), match)
    refused(store, lambda: store.add_message("kept", message), match)
    assert [m["content"] for m in store.chat_history("kept")] == ["already here"]


def test_every_entry_point_refuses_cycles_and_nan(store):
    store.add_user_message("s", "hi")
    cycle = self_containing_dict()
    nan = float("nan")
    refused(store, lambda: store.add_messages("s", [{"role": "user", "content": "ok"},
                                                     {"role": "user", "content": nan}]),
            r"messages\[1\]\.content is nan")
    refused(store, lambda: store.set_chat_history("s", [{"role": "user", "content": "x", "metadata": cycle}]),
            r"messages\[0\]\.metadata\.self contains itself")
    refused(store, lambda: store.update_metadata("s", {"a": nan}), r"metadata\.a is nan")
    refused(store, lambda: store.update_metadata("s", cycle), r"metadata\.self contains itself")
    refused(store, lambda: store.compact("s", {"role": "system", "content": "sum", "metadata": {"x": nan}}, 0),
            r"summary\.metadata\.x is nan")
    refused(store, lambda: store.create_session("t", metadata={"s": {1}}), r"metadata\.s is a set")
    refused(store, lambda: store.add_openai_items("s", [{"role": "user", "content": "x", "loop": cycle}]),
            r"items\[0\]\.loop\.self contains itself")
    assert [m["content"] for m in store.chat_history("s")] == ["hi"]
    assert store.session("s")["metadata"] == {}


def test_values_json_can_hold_still_round_trip_exactly(store):
    metadata = {"nested": nested(30, leaf=[1, 2.5, None, True, "t"]), "big": 2**63, "neg": -(2**63),
                "tuple": (1, 2), "unicode": "Ωé😀"}
    stored = store.add_message("s", {"role": "user", "content": "x", "metadata": metadata})
    expected = dict(metadata, tuple=[1, 2])
    assert stored["metadata"] == expected
    assert store.chat_history("s", cached=False)[0]["metadata"] == expected


def test_copy_json_refuses_a_value_that_contains_itself():
    with pytest.raises(ValueError, match="nests deeper than 64 levels"):
        sessiondb._core.copy_json(self_containing_dict())
    assert sessiondb._core.copy_json({"a": [1, {"b": 2}]}) == {"a": [1, {"b": 2}]}


def test_the_interpreter_survives_every_hostile_value(db_path):
    # In a child, so that a crash shows as its exit status instead of ending the test run.
    script = f"""
import sessiondb
store = sessiondb.Store({db_path!r})
c = {{}}; c["self"] = c
l = []; l.append(l)
deep = 1
for _ in range(200_000):
    deep = {{"k": deep}}
for bad in (c, l, deep, float("nan"), {{1, 2}}):
    try:
        store.add_message("s", {{"role": "user", "content": "x", "metadata": {{"v": bad}}}})
    except sessiondb.InvalidInput:
        pass
print("alive")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "alive"), done.stderr
