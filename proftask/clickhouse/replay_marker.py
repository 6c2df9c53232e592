"""Whether the last `proftask replay` into this ClickHouse ended: a replay records its start
(finished 0) and its end (finished 1) in `proftask_replays`, a table replay keeps, and a server
refuses to start while the last one recorded has not ended. Killed or failed midway, a replay
leaves part of the history, which served as the whole showed empty progress and partial trees."""
from __future__ import annotations

from proftask.clickhouse.client import ClickHouse
from proftask.clickhouse.migrate import bookkeeping_table
from proftask.errors import CannotRun

REPLAYS_TABLE = """
CREATE TABLE IF NOT EXISTS proftask_replays (
    at DateTime64(6, 'UTC') DEFAULT now64(6),
    finished UInt8
) ENGINE = ReplacingMergeTree ORDER BY at
"""


class ReplayUnfinished(CannotRun):
    """The last replay into this ClickHouse did not end: its tables hold part of the history."""


async def mark_replay(ch: ClickHouse, cluster: str | None, finished: bool) -> None:
    await ch.command(bookkeeping_table(REPLAYS_TABLE, "proftask_replays", cluster))
    await ch.insert("proftask_replays", [(int(finished),)], ["finished"])


async def require_no_unfinished_replay(ch: ClickHouse, cluster: str | None) -> None:
    """Raises ReplayUnfinished when the last replay recorded started and never ended. On a
    cluster the record is on the shard the replay wrote to: every replica of every shard is read."""
    if not (await ch.rows("EXISTS TABLE proftask_replays"))[0][0]:
        return
    source = f"clusterAllReplicas('{cluster}', currentDatabase(), proftask_replays)" if cluster else "proftask_replays"
    last = await ch.rows(f"SELECT finished, toString(at) FROM {source} ORDER BY at DESC LIMIT 1")
    if last and not last[0][0]:
        raise ReplayUnfinished(f"the replay started at {last[0][1]} UTC did not finish, so ClickHouse holds only part "
                               "of the history: run it again (make replay, or proftask replay), then start")
