"""Pipelines and MULTI/EXEC transactions through the multiplexed connection
(gateway/redis/lane.py), following the cluster's redirections as single commands do."""

from __future__ import annotations

import inspect
from typing import Any

from redis.asyncio.client import Pipeline
from redis.exceptions import AskError, ClusterError, MovedError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.redis.cluster import MAX_REDIRECTS, Route
from gateway.redis.failover import Retry, never_ran, resendable
from gateway.redis.wire import EMPTY_RESPONSE, parsed


class LanePipeline(Pipeline):
    """A pipeline (or MULTI/EXEC transaction) sent through the lane: its commands are
    written back to back, so the server runs them together and in order. WATCH, and
    scripts queued in a pipeline, need a connection of their own: those go the pool's way."""

    def __init__(self, lane: Any, route: Route, *args: Any) -> None:
        # lane: gateway/redis/lane.py's Lane (which imports this module)
        super().__init__(*args)
        self.lane, self.route = lane, route

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        stack = self.command_stack
        if (
            self.watching
            or self.connection is not None
            or self.scripts
            or any(EMPTY_RESPONSE in options for _, options in stack)
        ):
            return await super().execute(raise_on_error)
        if not stack:
            return []
        try:
            answers = await self._answers(stack)
            if raise_on_error:
                self.raise_first_error(stack, answers)
            values = [
                answer
                if isinstance(answer, Exception)
                else parsed(self.response_callbacks, args[0], answer, options)
                for answer, (args, options) in zip(answers, stack, strict=True)
            ]
            return [await v if inspect.isawaitable(v) else v for v in values]
        finally:
            await self.reset()

    async def _answers(self, stack: list[Any]) -> list[Any]:
        """Every answer, the whole pipeline sent again while it certainly did not run."""
        retry = Retry(self.lane._timeout_s or 0.0)
        while True:
            try:
                if self.is_transaction or self.explicit_transaction:
                    return await self._transaction(stack)
                return await self._routed([args for args, _ in stack], whole=False)
            except (RedisConnectionError, ResponseError) as error:
                reads = isinstance(error, RedisConnectionError) and all(
                    resendable(args) for args, _ in stack
                )
                if not ((never_ran(error) or reads) and await retry.again(error)):
                    raise

    async def _routed(self, commands: list[tuple[Any, ...]], whole: bool) -> list[Any]:
        """The answers, commands answered MOVED or ASK sent again where they say (the whole
        batch when ``whole``: a transaction's EXEC refused them all)."""
        answers = await self.lane.call_many(commands)
        for _ in range(MAX_REDIRECTS):
            redirected = [i for i, answer in enumerate(answers) if isinstance(answer, AskError)]
            if not redirected:
                return answers
            first = answers[redirected[0]]
            again = list(range(len(commands))) if whole else redirected
            resend = [commands[i] for i in again]
            if isinstance(first, MovedError):
                self.route.moved(first)
                fresh = await self.lane.call_many(resend)
            else:
                fresh = await self.route.asking(first, resend)
            for i, answer in zip(again, fresh, strict=True):
                answers[i] = answer
        raise ClusterError(f"more than {MAX_REDIRECTS} redirections in a row for a pipeline")

    async def _transaction(self, stack: list[Any]) -> list[Any]:
        commands = [("MULTI",), *(args for args, _ in stack), ("EXEC",)]
        answers = await self._routed(commands, whole=True)
        executed = answers[-1]
        queued = answers[1:-1]
        if isinstance(executed, ResponseError):  # ExecAbortError included
            raise next((a for a in queued if isinstance(a, ResponseError)), executed)
        # A command refused while queueing has no place in EXEC's answer: put its error back.
        results = list(executed)
        for i, answer in enumerate(queued):
            if isinstance(answer, ResponseError):
                results.insert(i, answer)
        return results
