"""One ClickHouse client per process, used from asyncio.

chDB runs in-process and blocks while it works, so every call goes through one dedicated
thread: the event loop never waits on it, and calls on the client are serialised (an
interleaved stream on a chDB handle silently returns nothing).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import fcntl
import functools
import os
import pathlib
from typing import Any
from collections.abc import Sequence

import clickhouse_connect
from clickhouse_connect.driver.exceptions import OperationalError

from proftask.errors import CannotRun

# Set once per client (a session setting), not per call: clickhouse-connect applies a call's
# settings to chDB by reading, SETting and restoring each one around the call (~5 ms a query),
# and query_arrow adds its string setting to every call unless the session already has it.
# chDB defaults to 90 % of RAM per query on a machine it shares with Kafka and the services.
SESSION_SETTINGS = {"max_memory_usage": 4 * 1024**3, "output_format_arrow_string_as_string": 1,
                    # LowCardinality columns (frame names) reach pyarrow as dictionaries
                    "output_format_arrow_low_cardinality_as_dictionary": 1}


class ClickHouseInUse(CannotRun):
    """The embedded engine's directory is open in another process (chDB: one process a directory)."""


def require_free(dsn: str) -> None:
    """For an embedded DSN, raises ClickHouseInUse when another live process holds its engine:
    chDB only says "Error initializing EmbeddedServer: . (BAD_ARGUMENTS)", after 60 lines on
    stderr. The engine holds its status file flock()ed while open (one a dead process left is
    not locked)."""
    if not dsn.startswith("chdb://"):
        return
    path = pathlib.Path(os.path.realpath(dsn.removeprefix("chdb://")))
    try:
        status = open(path / "status", "rb")  # noqa: SIM115 - closed below, whatever happens
    except FileNotFoundError:
        return
    with status:
        try:
            fcntl.flock(status, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = status.read(200).decode(errors="replace").partition("\n")[0].removeprefix("PID: ")
            if owner != str(os.getpid()):  # this process's own engine: opened again, as chDB allows
                raise ClickHouseInUse(f"ClickHouse at {path} is open in another process (pid {owner}): "
                                      "stop it first (make down)") from None
        else:
            fcntl.flock(status, fcntl.LOCK_UN)


def _open(dsn: str) -> tuple[Any, Any]:
    """(clickhouse-connect client, chDB connection for Arrow inserts or None)."""
    if dsn.startswith("chdb://"):
        require_free(dsn)
        path = pathlib.Path(dsn.removeprefix("chdb://"))
        path.mkdir(parents=True, exist_ok=True)
        # chDB compares engine paths literally: the same spelling as clickhouse-connect's
        path = pathlib.Path(os.path.realpath(path))
        client = clickhouse_connect.get_client(interface="chdb", path=str(path), settings=SESSION_SETTINGS)
        try:
            import chdb  # here, not at the top: the engine is ~200 MB a process that uses no chDB need not map
            return client, chdb.connect(str(path))
        except BaseException:
            client.close()
            raise
    return clickhouse_connect.get_client(dsn=dsn, settings=SESSION_SETTINGS), None


def _insert_arrow_in_process(connection: Any, table: str, arrow_table: Any) -> None:
    """An Arrow table into the embedded chDB through its `Python()` table function, which reads
    the table where it is. clickhouse-connect's insert_arrow writes it as an Arrow file to a
    temporary file that chDB then reads and parses: for a large profile's 41 MB of node values
    0.14 s against 0.07-0.09 s this way (the insert that every stored profile waits for). chDB
    casts the columns to the table's types (a string where a number goes may become 0 rather than
    fail): the rows come from profile_rows, typed there, never from outside."""
    rows = _one_chunk(arrow_table)  # noqa: F841 - read by its name by Python(rows) below
    columns = ", ".join(f"`{name}`" for name in arrow_table.column_names)
    connection.query(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM Python(rows) "
                     f"SETTINGS max_memory_usage = {SESSION_SETTINGS['max_memory_usage']}", "TabSeparated")


def _insert_arrow_by_client(client: Any, table: str, arrow_table: Any) -> None:
    """An Arrow table through clickhouse-connect, which sends it as an Arrow stream: one
    dictionary per column, so the table is made one chunk first."""
    client.insert_arrow(table, _one_chunk(arrow_table))


def _one_chunk(arrow_table: Any) -> Any:
    """A table of several chunks (a batch of profiles, each with its own dictionaries) as one,
    here in the executor rather than on the event loop: clickhouse-connect's Arrow stream takes
    one dictionary per column, and chDB's Python() read a batch of four large profiles' 16
    chunks of node values slower than the one it is copied into (0.26 s against 0.33 s, median)."""
    if arrow_table.num_columns and arrow_table.column(0).num_chunks > 1:
        return arrow_table.unify_dictionaries().combine_chunks()
    return arrow_table


def _query_rows(client, sql: str, parameters: dict[str, Any] | None) -> list[tuple]:
    return list(client.query(sql, parameters=parameters).result_rows)


# Fault injection for the outage tests: while this file exists, every call fails as if the
# server were down (the embedded engine cannot be taken away from its own process).
OUTAGE_FILE_ENV = "PROFTASK_FAULT_CLICKHOUSE_OUTAGE_FILE"


class ClickHouseUnavailable(ConnectionError):
    """ClickHouse cannot be reached; the caller retries (processor) or answers 503 (queries)."""


class ClickHouse:
    def __init__(self, dsn: str):
        self.dsn = dsn
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="clickhouse")
        self._client: Any = None  # a clickhouse_connect Client once open()ed
        self._in_process: Any = None  # with chDB, a connection of its own for Arrow inserts
        self._outage_file = os.environ.get(OUTAGE_FILE_ENV)

    async def _run(self, fn, *args, **kwargs):
        if self._outage_file and os.path.exists(self._outage_file):
            raise ClickHouseUnavailable(f"ClickHouse is unavailable (fault injected by {self._outage_file})")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))
        except OperationalError as e:  # a server DSN that does not answer
            raise ClickHouseUnavailable(str(e)) from e

    async def open(self) -> None:
        self._client, self._in_process = await self._run(_open, self.dsn)

    async def close(self) -> None:
        try:
            if self._in_process is not None:
                in_process, self._in_process = self._in_process, None
                await self._run(in_process.close)
        finally:
            try:
                if self._client is not None:
                    client, self._client = self._client, None
                    await self._run(client.close)
            finally:
                self._executor.shutdown(wait=True)

    async def command(self, sql: str, parameters: dict[str, Any] | None = None) -> None:
        await self._run(self._client.command, sql, parameters=parameters)

    async def rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple]:
        # made rows in the executor: a result's rows are read from its blocks when first asked,
        # which on the event loop held it for seconds on a large profile's stacks
        return await self._run(_query_rows, self._client, sql, parameters)

    async def arrow(self, sql: str, parameters: dict[str, Any] | None = None):
        """The result as a pyarrow Table (columnar, no Python object per row)."""
        return await self._run(self._client.query_arrow, sql, parameters=parameters)

    async def insert_arrow(self, table: str, arrow_table) -> None:
        if self._in_process is not None:
            await self._run(_insert_arrow_in_process, self._in_process, table, arrow_table)
        else:
            await self._run(_insert_arrow_by_client, self._client, table, arrow_table)

    async def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        if rows:
            await self._run(self._client.insert, table, rows, column_names=list(columns))
