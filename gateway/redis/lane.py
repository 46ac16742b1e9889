"""A Redis client whose commands, scripts and pipelines share one multiplexed connection.

redis-py spends ~50 µs of CPU on every call: a pool checkout under a condition and a
timeout, a health check, a read under a second timeout, retry and observability hooks.
Under load that, not Redis, is what limits a gateway process. A lane writes every command
issued in one event-loop turn in one write, and one reader task hands the answers, which
Redis gives in order, back to their callers. Pipelines and MULTI/EXEC go the same way, as
commands written back to back; what needs a connection of its own (WATCH, a pipeline of
scripts) uses the pool, and pub/sub has its own client.

On a Redis Cluster (gateway/redis/cluster.py) the lane talks to the master of the tenant's
slot; a MOVED answer sends the command again to the new master, an ASK answer to the node a
key is migrating to. Through a failover (gateway/redis/failover.py) a command that certainly
did not run is sent again, on a connection made afresh, for up to the socket timeout; so is
an idempotent script lost in flight. Everything else fails as before, for its caller to decide.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from collections import deque
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import (
    AskError,
    BusyLoadingError,
    ClusterError,
    MovedError,
    ReadOnlyError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.redis.cluster import MAX_REDIRECTS, Route
from gateway.redis.failover import NotRun, NotSent, Retry, never_ran, resendable
from gateway.redis.pipeline import LanePipeline
from gateway.redis.wire import EMPTY_RESPONSE, HAS_HIREDIS, Loading, pack_with_hiredis, parsed

log = logging.getLogger(__name__)


class _Batch:
    """Answers of commands sent back to back as one unit (a pipeline), errors included."""

    __slots__ = ("answers", "expected", "future")

    def __init__(self, expected: int, future: asyncio.Future[list[Any]]) -> None:
        self.answers: list[Any] = []
        self.expected = expected
        self.future = future

    def add(self, answer: Any) -> bool:
        """Take the next answer; True once the batch has all of them."""
        self.answers.append(answer)
        if len(self.answers) < self.expected:
            return False
        if not self.future.done():
            self.future.set_result(self.answers)
        return True


class Lane:
    """One connection, commands written back to back and answered in order.

    A command whose answer does not come within ``timeout_s`` (a hung server, a silent
    network) fails every command in flight with a TimeoutError and drops the connection; the
    next command reconnects. Commands that were written when the connection broke fail with a
    ConnectionError: they may or may not have run, as with any client."""

    def __init__(self, connection: AbstractConnection, timeout_s: float | None) -> None:
        self._connection = connection
        self._pack: Callable[[tuple[Any, ...]], list[bytes]] = (
            pack_with_hiredis if HAS_HIREDIS else lambda args: connection.pack_command(*args)
        )
        self._timeout_s = timeout_s
        self._waiting: deque[asyncio.Future[Any] | _Batch] = deque()
        self._outbox: list[bytes] = []
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._connect_lock = asyncio.Lock()
        self._answered = 0
        self._background: set[asyncio.Task[None]] = set()
        self._closed = False
        # Counts connections made: an answer on the same generation came on one connection
        # (what WAIT needs, gateway/redis/acks.py).
        self.generation = 0

    async def call(self, args: tuple[Any, ...]) -> Any:
        """Send one command and return its raw answer (an error answer is raised)."""
        return await self._send(self._pack(args), 0)

    async def call_many(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send commands back to back; return every answer, an error answer as the
        ResponseError itself (a pipeline decides what to raise)."""
        pack = self._pack
        return await self._send([chunk for args in commands for chunk in pack(args)], len(commands))

    async def _send(self, packed: list[bytes], batch: int) -> Any:
        """Queue packed commands for this loop turn's write. batch 0: one command;
        n: n commands answered together."""
        if not self._tasks:
            try:
                await self._connect()
            except RedisConnectionError as exc:
                raise NotSent(str(exc)) from exc
            except OSError as exc:
                raise NotSent(f"cannot connect to Redis: {exc}") from exc
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._outbox:
            loop.call_soon(self._flush)
        self._outbox.extend(packed)
        self._waiting.append(_Batch(batch, future) if batch else future)
        return await future

    async def reconnect(self, why: str) -> None:
        """Drop the connection now (the master moved); the next command connects again."""
        if self._tasks:
            await self._drop(RedisConnectionError(why))

    async def aclose(self) -> None:
        self._closed = True
        await self._drop(RedisConnectionError("the Redis client was closed"))

    async def _connect(self) -> None:
        async with self._connect_lock:
            if self._tasks:
                return
            if self._closed:
                raise RedisConnectionError("the Redis client was closed")
            await self._connection.connect()
            self.generation += 1
            self._writer = self._connection._writer
            self._tasks = [asyncio.create_task(self._read(), name="redis-lane-reader")]
            if self._timeout_s:
                self._tasks.append(asyncio.create_task(self._watch(), name="redis-lane-watchdog"))

    def _flush(self) -> None:
        """Write what this loop turn asked for. redis-py's own send is a coroutine that
        drains after each write; the lane writes to the transport and lets it buffer, since
        what it holds is bounded by the commands in flight."""
        data, self._outbox = self._outbox, []
        if not data or self._writer is None:
            return
        try:
            self._writer.writelines(data)
        except Exception as exc:
            self._drop_soon(exc)

    async def _read(self) -> None:
        while True:
            try:
                answer = await self._connection.read_response(timeout=math.inf)
            except MovedError as error:
                # The slot left this node: what follows on this connection is refused too.
                answer = error
                self._drop_soon(NotRun(f"the tenant's slot moved: {error}"))
            except ReadOnlyError as error:
                # Demoted to a replica: what follows on this connection runs no write either,
                # so it fails as NotRun and the next command connects again (to the new master).
                answer = error
                self._drop_soon(NotRun(f"the Redis node is a replica now: {error}"))
            except ResponseError as error:
                answer = error
            except BusyLoadingError as error:  # a ConnectionError to redis-py, not to us
                answer = Loading(str(error))
            except Exception as exc:
                self._drop_soon(exc)
                return
            self._answered += 1
            if not self._waiting:
                self._drop_soon(RedisConnectionError("an answer nobody asked for"))
                return
            head = self._waiting[0]
            if type(head) is _Batch:
                if head.add(answer):
                    self._waiting.popleft()
                continue
            future = self._waiting.popleft()
            if future.done():  # its caller was cancelled; the answer is not theirs to see
                continue
            if isinstance(answer, ResponseError):
                future.set_exception(answer)
            else:
                future.set_result(answer)

    def progress(self) -> tuple[int, object]:
        """What the watchdog compares a timeout apart: answers so far, and the oldest
        command still waiting (None when none waits)."""
        return self._answered, self._waiting[0] if self._waiting else None

    async def _watch(self) -> None:
        """Fail the lane when one command has waited a whole period with no answer at all:
        the same command at the head at two checks a timeout apart, nothing answered since."""
        assert self._timeout_s
        previous = self.progress()
        while True:
            await asyncio.sleep(self._timeout_s)
            now = self.progress()
            if now[1] is not None and now == previous:
                await self._drop(RedisTimeoutError(f"no answer from Redis in {self._timeout_s} s"))
                return
            previous = now

    def current_generation(self) -> int:
        """The connection the next command goes on: this one, or the one it will make."""
        return self.generation if self._tasks else self.generation + 1

    def _drop_soon(self, error: BaseException) -> None:
        # For this connection only: by the time the task runs, the next may carry commands.
        drop = self._drop(error, self.generation)
        task = asyncio.get_running_loop().create_task(drop)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _drop(self, error: BaseException, generation: int | None = None) -> None:
        """Fail what is in flight and disconnect; the next command reconnects. With a
        generation: only if that connection is still the one in use."""
        async with self._connect_lock:
            if generation is not None and (generation != self.generation or not self._tasks):
                return
            tasks, self._tasks, self._writer = self._tasks, [], None
            current = asyncio.current_task()
            for task in tasks:
                if task is not current:
                    task.cancel()
            waiting, self._waiting, self._outbox = self._waiting, deque(), []
            if not isinstance(error, (RedisConnectionError, RedisTimeoutError)):
                error = RedisConnectionError(f"Redis connection lost: {error}")
            for entry in waiting:
                future, failure = entry, error
                if type(entry) is _Batch:
                    future = entry.future
                    if entry.answers and isinstance(error, NotRun):
                        # Half answered before the demotion: its first part may have run.
                        failure = RedisConnectionError(str(error))
                if not future.done():
                    future.set_exception(failure)
            if waiting and not self._closed:
                log.warning(
                    "Redis connection dropped with %d commands in flight: %s", len(waiting), error
                )
            await self._connection.disconnect(nowait=True)


class LaneRedis(Redis):
    """redis-py's client with commands, scripts and pipelines sent through a Lane; WATCH and
    pipelines of scripts use the connection pool as usual."""

    def __init__(
        self,
        *,
        timeout_s: float | None,
        lane_connection: AbstractConnection | None = None,
        route: Route | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        pool = self.connection_pool
        connection = lane_connection or pool.connection_class(**pool.connection_kwargs)
        self.lane = Lane(connection, timeout_s)
        self.route = route or Route(None)
        self.retry_s = timeout_s or 0.0
        # The SHAs of idempotent scripts (LuaContract.idempotent): sent again when lost.
        self.retry_safe: set[str] = set()

    def mark_retry_safe(self, sha: str) -> None:
        self.retry_safe.add(sha)

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        command_name = args[0]
        retry = Retry(self.retry_s)
        while True:
            try:
                response = await self.call_routed(args)
                break
            except ResponseError as error:
                if never_ran(error) and await retry.again(error):
                    continue
                if EMPTY_RESPONSE in options:
                    return options[EMPTY_RESPONSE]
                raise
            except RedisConnectionError as error:
                if (never_ran(error) or self._idempotent(args)) and await retry.again(error):
                    continue
                raise
        value = parsed(self.response_callbacks, command_name, response, options)
        return await value if inspect.isawaitable(value) else value

    async def call_routed(self, args: tuple[Any, ...]) -> Any:
        """One command, sent again where MOVED or ASK says (an error answer is raised)."""
        for _ in range(MAX_REDIRECTS):
            try:
                return await self.lane.call(args)
            except MovedError as error:
                self.route.moved(error)  # off a cluster: NotOwner, which says what to do
            except AskError as error:
                (answer,) = await self.route.asking(error, [args])
                if isinstance(answer, ResponseError):
                    raise answer from None
                return answer
        raise ClusterError(f"more than {MAX_REDIRECTS} redirections in a row for {args[0]!r}")

    def _idempotent(self, args: tuple[Any, ...]) -> bool:
        if resendable(args):
            return True
        name = args[0]
        if name not in ("EVALSHA", "evalsha") or len(args) < 2:
            return False
        sha = args[1].decode() if isinstance(args[1], bytes) else str(args[1])
        return sha in self.retry_safe

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        return LanePipeline(
            self.lane,
            self.route,
            self.connection_pool,
            self.response_callbacks,
            transaction,
            shard_hint,
        )

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await self.lane.aclose()
        await self.route.aclose()
        await super().aclose(close_connection_pool)
