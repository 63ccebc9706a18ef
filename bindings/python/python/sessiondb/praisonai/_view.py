"""Conversions between sessiondb's messages and PraisonAI's, and the retention window.

PraisonAI's store trims its *active window* on every write (``retention="compact"`` rolls the
overflow into a summary message and archives it, ``"truncate"`` drops it). sessiondb keeps
every message; the window is a view computed from the full history:

* ``boundary`` is the raw index of the last message outside the window (``-1``: none). It
  advances exactly as PraisonAI's does when messages are appended one by one: after each
  append, once the window holds more than ``active_window`` entries (its summary counted),
  the oldest turns leave it, never starting it on an orphaned tool result.
* The boundary is recorded in the file as a core compaction whose summary message carries
  the window's statistics, in batches (when ``active_window`` more messages than the window
  have piled up behind the last record) and before anything copies or cuts the history (a
  fork, a snapshot, a revert), so reading never scans more than two windows of messages.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Sequence

from praisonaiagents.session.store import SessionMessage

# Session metadata keys this adapter reserves (hidden from SessionData.metadata).
RESERVED = "_praisonai"
GATEWAY_KEY = RESERVED + ".gateway_session_id"
SHARED_KEY = RESERVED + ".shared"
CHECKPOINT_KEY = RESERVED + ".checkpoint"
RUNTIME_PREFIX = RESERVED + ".runtime:"
# In a retention summary's metadata: the statistics of every message it stands for.
STATS_KEY = RESERVED + ".window"
SUMMARY_PREFIX = "[Session Summary]\n"
_FILES = re.compile(r"[^\s]+\.[a-zA-Z]{1,4}")


def epoch(text: Optional[str]) -> float:
    if not text:
        return time.time()
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def iso(text: Optional[str]) -> str:
    """sessiondb's UTC timestamp in the form PraisonAI writes (``isoformat()``)."""
    if not text:
        return datetime.now(timezone.utc).isoformat()
    return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()


def stamp_text(stamp: Any) -> Optional[str]:
    if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
        return datetime.fromtimestamp(stamp, timezone.utc).isoformat()
    return None


def public_metadata(metadata: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in metadata.items() if not k.startswith(RESERVED)}


def message_in(
    role: str,
    content: Any,
    metadata: Optional[Dict[str, Any]] = None,
    tool_calls: Any = None,
    tool_call_id: Optional[str] = None,
) -> Dict[str, Any]:
    """A message for sessiondb from PraisonAI's arguments. Tool calls that are not a list
    (an encrypting wrapper hands them over as one opaque string) ride in the metadata."""
    message: Dict[str, Any] = {"role": role, "content": content or ""}
    metadata = dict(metadata or {})
    if tool_calls:
        if isinstance(tool_calls, list):
            message["tool_calls"] = tool_calls
        else:
            metadata[RESERVED + ".tool_calls"] = tool_calls
    if metadata:
        message["metadata"] = metadata
    if tool_call_id is not None:
        message["tool_call_id"] = tool_call_id
    return message


def _tool_calls(message: Dict[str, Any]) -> Any:
    if message.get("tool_calls"):
        return message["tool_calls"]
    return (message.get("metadata") or {}).get(RESERVED + ".tool_calls")


def llm_message(message: Dict[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {"role": message["role"], "content": message.get("content") or ""}
    calls = _tool_calls(message)
    if calls:
        out["tool_calls"] = calls
    if message.get("tool_call_id") is not None:
        out["tool_call_id"] = message["tool_call_id"]
    return out


def session_message(message: Dict[str, Any]) -> SessionMessage:
    metadata = message.get("metadata") or {}
    return SessionMessage(
        role=message["role"],
        content=message.get("content") or "",
        timestamp=message["timestamp"] if "timestamp" in message else epoch(message.get("created_at")),
        metadata={k: v for k, v in metadata.items() if not k.startswith(RESERVED)},
        tool_calls=_tool_calls(message),
        tool_call_id=message.get("tool_call_id"),
    )


def partial_as_message(partial: Dict[str, Any]) -> Dict[str, Any]:
    """A streaming reply as the trailing ``partial`` assistant message PraisonAI shows."""
    return {
        "role": "assistant",
        "content": partial["content"],
        "metadata": {**(partial.get("metadata") or {}), "partial": True},
        "created_at": partial["updated_at"],
    }


# --- the retention window ---------------------------------------------------------------


def _empty_stats() -> Dict[str, Any]:
    return {"count": 0, "roles": {"user": 0, "assistant": 0, "tool": 0, "system": 0}, "tools": [], "files": []}


def add_stats(stats: Dict[str, Any], messages: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    out = {
        "count": stats["count"],
        "roles": dict(stats["roles"]),
        "tools": list(stats["tools"]),
        "files": list(stats["files"]),
    }
    tools, files = set(out["tools"]), set(out["files"])
    for m in messages:
        out["count"] += 1
        out["roles"][m["role"]] = out["roles"].get(m["role"], 0) + 1
        if m["role"] == "tool":
            tools.add(str((m.get("metadata") or {}).get("name", "unknown")))
            if isinstance(m.get("content"), str):
                files.update(_FILES.findall(m["content"]))
    out["tools"], out["files"] = sorted(tools), sorted(files)
    return out


def summary_text(stats: Dict[str, Any]) -> str:
    """One deterministic gist of every compacted message (PraisonAI's fallback-summary
    form), bounded in size however long the session grows."""
    lines = [
        f"Previous conversation: {stats['count']} messages",
        f"Message breakdown: {stats['roles']}",
    ]
    if stats["tools"]:
        lines.append(f"Tools used: {', '.join(stats['tools'])}")
    if stats["files"]:
        more = len(stats["files"]) - 5
        lines.append(f"Files referenced: {', '.join(stats['files'][:5])}" + (f" (+{more} more)" if more > 0 else ""))
    return SUMMARY_PREFIX + "\n".join(lines)


@dataclass
class Window:
    """The active window of a session under a retention policy."""

    summary: Optional[Dict[str, Any]]  # the summary message shown at the window's head
    active: List[Dict[str, Any]]  # raw messages in the window (a streaming reply last)
    boundary: int  # raw index of the last message outside the window (-1: none)
    recorded: int  # the boundary recorded in the file (-1: none)
    stats: Dict[str, Any] = field(default_factory=_empty_stats)

    def messages(self) -> List[Dict[str, Any]]:
        return ([self.summary] if self.summary is not None else []) + self.active


def window(
    working: List[Dict[str, Any]],
    retention: str,
    active_window: Optional[int],
    partial: Optional[Dict[str, Any]] = None,
) -> Window:
    """The window from sessiondb's working history (the recorded summary, if any, then the
    messages after it) and the streaming reply, if any."""
    recorded, stats = -1, _empty_stats()
    raws = list(working)
    if raws and STATS_KEY in (raws[0].get("metadata") or {}):
        head = raws.pop(0)
        recorded, stats = head["index"], head["metadata"][STATS_KEY]
    if partial is not None:
        raws.append(partial_as_message(partial))
    compact = retention != "truncate"
    has_summary = compact and recorded >= 0
    start = 0
    if retention != "keep_all" and active_window and active_window > 0:
        for end in range(1, len(raws) + 1):
            if has_summary + (end - start) <= active_window:
                continue
            cut = end - active_window
            while cut < end and raws[cut]["role"] == "tool":
                cut += 1
            if cut > start:
                start = cut
                has_summary = compact
    if start:
        stats = add_stats(stats, raws[:start])
    boundary = recorded + start
    summary = None
    if has_summary:
        summary = {
            "role": "system",
            "content": summary_text(stats),
            "metadata": {"compaction": True, "compacted_count": stats["count"]},
            "created_at": (working[0]["created_at"] if recorded >= 0 else raws[start - 1]["created_at"]),
        }
    return Window(summary, raws[start:], boundary, recorded, stats)


def summary_record(w: Window) -> Dict[str, Any]:
    """The core compaction's summary message that records ``w``'s boundary."""
    return {
        "role": "system",
        "content": summary_text(w.stats),
        "metadata": {"compaction": True, "compacted_count": w.stats["count"], STATS_KEY: w.stats},
    }
