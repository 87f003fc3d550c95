"""Running the quota store's Lua scripts: by EVALSHA, batched under load.

redis-py's Script object imports a module and checks the client against a Protocol on every
call; these run EVALSHA themselves and load the script again when Redis answers NOSCRIPT (after
a restart or a flush).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

from edge.store.clients import Client

Call = tuple[list[str], list[str | int], "asyncio.Future[Any]"]


class Script:
    """A Lua script from `edge/lua`, run by EVALSHA; `prelude` names a file of functions the
    script uses, sent in front of it (Redis scripts cannot load one another)."""

    def __init__(self, redis: Client, name: str, prelude: str | None = None) -> None:
        self._r = redis
        lua = resources.files("edge").joinpath("lua")
        text = lua.joinpath(name).read_text("utf-8")
        if prelude is not None:
            text = lua.joinpath(prelude).read_text("utf-8") + "\n" + text
        self.text = text
        self.sha = hashlib.sha1(self.text.encode("utf-8"), usedforsecurity=False).hexdigest()

    async def __call__(self, keys: Sequence[str], args: Sequence[str | int | bytes]) -> Any:
        """The script's reply."""
        # execute_command is what evalsha calls, one wrapper less.
        run = self._r.execute_command
        try:
            return await run("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self._r.script_load(self.text)
            return await run("EVALSHA", self.sha, len(keys), *keys, *args)


class Batched:
    """Calls of one script sent together while an earlier send is in flight: one write, one
    round trip and one pooled connection for all of them, where each call alone costs redis-py a
    connection checkout, a write and a read. A call that finds nothing in flight goes at once,
    so an idle gateway waits for nothing; under load the calls queued behind one send go out
    together when it returns. Each call is still its own atomic script run, with its own reply.

    Under load a call may wait for the send ahead of it, one round trip at most, and saves the
    gateway the CPU that the calls queued with it would each have cost."""

    def __init__(self, script: Script, redis: Client) -> None:
        self._script = script
        self._r = redis
        self._busy = False
        self._queue: list[Call] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def __call__(self, keys: list[str], args: list[str | int]) -> Any:
        """The script's reply."""
        if self._busy:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._queue.append((keys, args, future))
            return await future
        self._busy = True
        try:
            return await self._script(keys, args)
        finally:
            self._next()

    def _next(self) -> None:
        """Send what queued up meanwhile, if anything did."""
        if not self._queue:
            self._busy = False
            return
        batch, self._queue = self._queue, []
        task = asyncio.get_running_loop().create_task(self._send_then_next(batch))
        self._sending.add(task)  # held until done: a task nobody references may be collected
        task.add_done_callback(self._sending.discard)

    async def _send_then_next(self, batch: list[Call]) -> None:
        try:
            await self._send(batch)
        finally:
            self._next()

    async def _send(self, batch: list[Call]) -> None:
        # A caller that has gone away (its request cancelled) is not run for: nothing it would
        # have reserved could be released.
        batch = [call for call in batch if not call[2].done()]
        if not batch:
            return
        if len(batch) == 1:
            keys, args, future = batch[0]
            try:
                _settle(future, await self._script(keys, args))
            except Exception as exc:  # noqa: BLE001 - handed to the caller, which maps it
                _settle(future, exc)
            return
        pipe = self._r.pipeline(transaction=False)
        for keys, args, _ in batch:
            pipe.execute_command("EVALSHA", self._script.sha, len(keys), *keys, *args)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # noqa: BLE001 - every call of the batch fails alike
            for *_, future in batch:
                _settle(future, exc)
            return
        for (keys, args, future), reply in zip(batch, replies, strict=True):
            if isinstance(reply, NoScriptError):
                try:
                    reply = await self._script(keys, args)  # loads it, then runs this call
                except Exception as exc:  # noqa: BLE001 - handed to the caller
                    reply = exc
            _settle(future, reply)


def _settle(future: asyncio.Future[Any], reply: Any) -> None:
    """Hand a reply (or the error in its place) to a caller still waiting for it."""
    if future.done():
        return
    if isinstance(reply, BaseException):
        future.set_exception(reply)
    else:
        future.set_result(reply)
