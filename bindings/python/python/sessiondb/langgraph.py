"""A LangGraph checkpointer over sessiondb.

``SessiondbSaver`` is a ``BaseCheckpointSaver`` with every method of the contract, sync and
async on one class, as the upstream savers have them::

    from sessiondb import Store
    from sessiondb.langgraph import SessiondbSaver
    graph = builder.compile(checkpointer=SessiondbSaver(Store("agents.db")))

A thread is the sessiondb session ``langgraph:<thread_id>``, and each checkpoint one message
of it, so ``sessiondb history`` and ``tree`` show a thread as the log of its checkpoints.
``copy_thread`` forks that session: nothing is copied. Channel values are stored once per
version and shared by every checkpoint (and copy) that reads them; deleting, pruning or
deleting a run leaves no value no checkpoint reads. Values are serialised with the saver's
``serde`` (LangGraph's ``JsonPlusSerializer`` by default, its allowlists kept) and stored as
it gives them. Many processes may write to one file (or PostgreSQL) at once, to different
threads or the same one: each checkpoint is one transaction.

The async methods run the store call in a worker thread (the core releases the GIL), so the
event loop never waits for the database.

Requires ``langgraph-checkpoint`` (``pip install 'sessiondb[langgraph]'``).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from ._core import Store

__all__ = ["SessiondbSaver"]

RunnableConfig = dict[str, Any]


def _configurable(config: RunnableConfig | None) -> dict[str, Any]:
    if not config:
        return {}
    return dict(config.get("configurable") or {})


def _thread_id(value: Any) -> str:
    if value is None:
        raise ValueError("config['configurable'] has no 'thread_id'")
    return str(value)


class SessiondbSaver(BaseCheckpointSaver[str]):
    """LangGraph checkpoints in a sessiondb :class:`~sessiondb.Store` (a file or PostgreSQL).

    ``store`` is an open :class:`~sessiondb.Store` or a path / URL to open one with.
    """

    store: Store

    def __init__(
        self, store: Store | str, *, serde: SerializerProtocol | None = None
    ) -> None:
        super().__init__(serde=serde)
        self.store = store if isinstance(store, Store) else Store(store)

    # -- versions: strings that sort as they grow, as upstream's database savers use.

    def get_next_version(self, current: str | None, channel: None = None) -> str:
        if current is None:
            number = 0
        elif isinstance(current, int):
            number = current
        else:
            number = int(str(current).split(".")[0])
        return f"{number + 1:032}.{random.random():016}"

    # -- reading

    def _tuple(self, row: tuple[Any, ...]) -> CheckpointTuple:
        thread_id, ns, checkpoint_id, parent_id, (kind, data), metadata, values, writes = row
        checkpoint: Checkpoint = self.serde.loads_typed((kind, data))
        checkpoint["channel_values"] = {
            channel: self.serde.loads_typed((vkind, vdata))
            for channel, vkind, vdata in values
            if vkind != "empty"
        }
        parent = (
            {
                "configurable": {
                    "thread_id": thread_id,
                    "checkpoint_ns": ns,
                    "checkpoint_id": parent_id,
                }
            }
            if parent_id is not None
            else None
        )
        return CheckpointTuple(
            config={
                "configurable": {
                    "thread_id": thread_id,
                    "checkpoint_ns": ns,
                    "checkpoint_id": checkpoint_id,
                }
            },
            checkpoint=checkpoint,
            metadata=metadata,
            parent_config=parent,
            pending_writes=[
                (task_id, channel, self.serde.loads_typed((wkind, wdata)))
                for task_id, channel, wkind, wdata, _path in writes
            ],
        )

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        conf = _configurable(config)
        row = self.store.get_checkpoint(
            _thread_id(conf.get("thread_id")),
            conf.get("checkpoint_ns", ""),
            get_checkpoint_id(config),
        )
        return None if row is None else self._tuple(row)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        conf = _configurable(config)
        thread_id = conf.get("thread_id")
        rows = self.store.list_checkpoints(
            thread_id=None if thread_id is None else str(thread_id),
            checkpoint_ns=conf.get("checkpoint_ns"),
            checkpoint_id=conf.get("checkpoint_id"),
            filter=filter,
            before=_configurable(before).get("checkpoint_id"),
            limit=limit,
        )
        for row in rows:
            yield self._tuple(row)

    # -- writing

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        conf = _configurable(config)
        thread_id = _thread_id(conf.get("thread_id"))
        ns = conf.get("checkpoint_ns", "")
        values = checkpoint["channel_values"]
        bare = {**checkpoint, "channel_values": {}}
        versions = checkpoint.get("channel_versions", {})
        new_blobs = []
        for channel, version in new_versions.items():
            kind, data = (
                self.serde.dumps_typed(values[channel])
                if channel in values
                else ("empty", None)
            )
            new_blobs.append((channel, str(version), kind, data))
        other_values = [
            (channel, str(versions.get(channel, "")), *self.serde.dumps_typed(value))
            for channel, value in values.items()
            if channel not in new_versions
        ]
        self.store.put_checkpoint(
            thread_id,
            ns,
            checkpoint["id"],
            conf.get("checkpoint_id"),
            self.serde.dumps_typed(bare),
            get_serializable_checkpoint_metadata(config, metadata),
            [(channel, str(version)) for channel, version in versions.items()],
            new_blobs,
            other_values,
        )
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        conf = _configurable(config)
        rows = [
            (WRITES_IDX_MAP.get(channel, idx), channel, *self.serde.dumps_typed(value))
            for idx, (channel, value) in enumerate(writes)
        ]
        self.store.put_checkpoint_writes(
            _thread_id(conf.get("thread_id")),
            conf.get("checkpoint_ns", ""),
            conf["checkpoint_id"],
            task_id,
            task_path,
            rows,
            all(channel in WRITES_IDX_MAP for channel, _ in writes),
        )

    def delete_thread(self, thread_id: str) -> None:
        self.store.delete_checkpoint_thread(str(thread_id))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self.store.copy_checkpoint_thread(str(source_thread_id), str(target_thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self.store.delete_checkpoint_runs([str(r) for r in run_ids])

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self.store.prune_checkpoints([str(t) for t in thread_ids], strategy)

    # -- async: the same calls in a worker thread

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        found = await asyncio.to_thread(
            lambda: list(self.list(config, filter=filter, before=before, limit=limit))
        )
        for item in found:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def aprune(
        self, thread_ids: Sequence[str], *, strategy: str = "keep_latest"
    ) -> None:
        await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)
