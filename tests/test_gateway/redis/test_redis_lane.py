"""The multiplexed Redis client (gateway/redis/lane.py): every caller gets its own answer,
errors stay with the command that caused them, and a dead or hung server fails what is in
flight without wedging the client. A real redis-server throughout; private ones where a test
stops or kills the server."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from helpers import wait_until
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.config import RedisConfig
from gateway.redis.client import make_redis
from gateway.redis.embedded import RedisServer, find_redis_server
from gateway.redis.lane import LaneRedis


@pytest_asyncio.fixture
async def lane(redis_url: str) -> AsyncIterator[LaneRedis]:
    client = make_redis(redis_url, RedisConfig())
    assert isinstance(client, LaneRedis)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def private_server() -> RedisServer:
    if find_redis_server() is None:
        pytest.skip("redis-server not found: apt-get install redis-server")
    server = RedisServer(persistent=False).start()
    yield server
    server.stop()


async def test_concurrent_callers_each_get_their_own_answer(lane, tenant):
    keys = [f"{{{tenant}}}:k{i}" for i in range(300)]
    await asyncio.gather(*(lane.set(k, i) for i, k in enumerate(keys)))
    values = await asyncio.gather(*(lane.get(k) for k in keys))
    assert values == [str(i).encode() for i in range(300)]
    # The response callbacks apply as with redis-py's own client.
    await lane.sadd(f"{{{tenant}}}:s", "a", "b")
    assert await lane.smembers(f"{{{tenant}}}:s") == {b"a", b"b"}
    assert await lane.exists(*keys[:3]) == 3


async def test_an_error_answer_goes_to_its_caller_only(lane, tenant):
    key = f"{{{tenant}}}:str"
    await lane.set(key, "x")
    results = await asyncio.gather(
        lane.get(key), lane.hget(key, "f"), lane.get(key), return_exceptions=True
    )
    assert results[0] == b"x" and results[2] == b"x"
    assert isinstance(results[1], ResponseError) and "WRONGTYPE" in str(results[1])


async def test_a_value_redis_cannot_take_is_refused_before_anything_is_sent(lane, tenant):
    key = f"{{{tenant}}}:v"
    with pytest.raises(DataError):
        await lane.set(key, None)  # type: ignore[arg-type]
    async with lane.pipeline(transaction=False) as pipe:
        pipe.set(key, "ok").set(key, None)  # type: ignore[arg-type]
        with pytest.raises(DataError):
            await pipe.execute()
    # Neither half of the refused pipeline went out, and the answers are still in step.
    assert await lane.get(key) is None
    assert await lane.echo("in step") == b"in step"


async def test_a_cancelled_caller_does_not_shift_the_answers(lane, tenant):
    key = f"{{{tenant}}}:n"
    assert await lane.ping()  # connected: a command is written in the turn it is made
    for i in range(20):
        doomed = asyncio.ensure_future(lane.incr(key))
        await asyncio.sleep(0)  # written, not yet answered
        doomed.cancel()
        assert await lane.echo(f"mine {i}") == f"mine {i}".encode()
        # The cancelled INCR still ran: the server had it before the cancel.
        assert await lane.get(key) == str(i + 1).encode()


async def test_pipelines_answer_in_order_with_errors_in_place(lane, tenant):
    key, text_key = f"{{{tenant}}}:h", f"{{{tenant}}}:t"
    await lane.set(text_key, "t")
    async with lane.pipeline(transaction=False) as pipe:
        pipe.hset(key, "a", 1).hget(key, "a").hget(text_key, "a").smembers(key + "s")
        answers = await pipe.execute(raise_on_error=False)
    assert answers[:2] == [1, b"1"] and answers[3] == set()
    assert isinstance(answers[2], ResponseError)
    async with lane.pipeline(transaction=False) as pipe:
        pipe.get(text_key).hget(text_key, "a")
        with pytest.raises(ResponseError, match="Command # 2"):
            await pipe.execute()


async def test_transactions_are_atomic_and_report_errors(lane, tenant):
    key = f"{{{tenant}}}:counter"
    async with lane.pipeline(transaction=True) as pipe:
        pipe.incr(key).incr(key).get(key)
        assert await pipe.execute() == [1, 2, b"2"]
    # A command refused while queueing aborts the whole transaction.
    async with lane.pipeline(transaction=True) as pipe:
        pipe.incr(key).execute_command("NO_SUCH_COMMAND")
        with pytest.raises(ResponseError, match="unknown command"):
            await pipe.execute()
    assert await lane.get(key) == b"2"
    # WATCH needs a connection of its own: it still works, through the pool.
    async with lane.pipeline(transaction=True) as pipe:
        await pipe.watch(key)
        await lane.incr(key)  # someone else changes the watched key
        pipe.multi()
        pipe.set(key, 100)
        with pytest.raises(WatchError):
            await pipe.execute()
    assert await lane.get(key) == b"3"


async def test_scripts_are_reloaded_after_a_script_flush(lane, tenant):
    script = lane.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    key = f"{{{tenant}}}:scripted"
    assert await script(keys=[key], args=[2]) == 2
    await lane.script_flush()
    assert await script(keys=[key], args=[3]) == 5


async def test_a_hung_server_times_out_and_the_client_recovers(private_server):
    client = make_redis(private_server.url, RedisConfig(socket_timeout_s=0.5))
    pid = private_server.pid
    assert pid is not None
    try:
        assert await client.ping()
        os.kill(pid, signal.SIGSTOP)
        try:
            stuck = [asyncio.ensure_future(client.incr("{t}:n")) for _ in range(5)]
            done = await asyncio.gather(*stuck, return_exceptions=True)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert all(isinstance(r, RedisTimeoutError) for r in done), done
        await wait_until(lambda: _answers(client), timeout=10)
    finally:
        await client.aclose()


async def test_a_command_after_an_idle_spell_is_not_taken_for_a_stall(private_server):
    """The watchdog trips only on the same command waiting at two checks: a command made
    just before a check, after a quiet spell, is new there."""
    client = make_redis(private_server.url, RedisConfig(socket_timeout_s=60))
    pid = private_server.pid
    assert pid is not None
    try:
        assert await client.ping()
        idle = client.lane.progress()
        assert idle[1] is None
        os.kill(pid, signal.SIGSTOP)
        try:
            pending = asyncio.ensure_future(client.ping())
            await wait_until(lambda: client.lane.progress()[1] is not None)
            in_flight = client.lane.progress()
            assert in_flight != idle  # a check now would not trip
        finally:
            os.kill(pid, signal.SIGCONT)
        assert await pending
        assert client.lane.progress() != in_flight
    finally:
        await client.aclose()


async def test_a_restarted_server_is_reconnected(private_server):
    client = make_redis(private_server.url, RedisConfig())
    try:
        assert await client.set("{t}:k", "v")
        private_server.stop()
        with pytest.raises(RedisConnectionError):
            await client.get("{t}:k")
        private_server.requested_port = private_server.port
        private_server.start()
        assert await wait_until(lambda: _answers(client), timeout=10)
    finally:
        await client.aclose()


async def test_a_closed_client_refuses_commands(redis_url):
    client = make_redis(redis_url, RedisConfig())
    assert await client.ping()
    await client.aclose()
    with pytest.raises(RedisConnectionError, match="closed"):
        await client.ping()


async def _answers(client: LaneRedis) -> bool:
    try:
        return bool(await client.ping())
    except (RedisConnectionError, RedisTimeoutError):
        return False
