"""Reading a mailbox over IMAP (aioimaplib): IDLE where the server offers it, polling
otherwise, and never losing or repeating a mail across restarts.

Per mailbox, Redis keeps the folder's UIDVALIDITY and the highest UID that was stored and
flagged. A mail is handed to the adapter (which stores it), then flagged \\Seen (or moved),
then its UID is recorded: a crash anywhere in between fetches it again, and the host's
dedupe on its Message-ID makes that one message. When UIDVALIDITY changes (the folder was
recreated or the server migrated), UIDs mean nothing any more: the folder's unseen mail is
fetched again and dedupe sorts out what was already stored.

With several gateway processes, one reads each mailbox: a lease in Redis names it, and
another takes over when it stops renewing. The client's plumbing is in imap_client.py.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import aioimaplib

from adapters.email.config import EmailConfig, ImapConfig, MailboxConfig
from adapters.email.imap_client import (
    ImapError,
    check,
    connect,
    disconnect,
    literal,
    mailbox_name,
    numbers,
)
from adapters.email.keys import EmailKeys
from adapters.email.lease import Lease
from adapters.loops import Outage, stop_if_cancelled

log = logging.getLogger("zhongtai.email")

# A mail that fails to store this many times is left in the mailbox (unflagged) and skipped,
# so one poison mail cannot stop the mailbox; the log says which.
MAX_ATTEMPTS = 5
FAILURES_TTL_S = 7 * 86400

Process = Callable[[MailboxConfig, bytes, int | None], Awaitable[None]]


class MailboxReader:
    """One mailbox's IMAP loop; ``run()`` until cancelled."""

    def __init__(
        self,
        mailbox: MailboxConfig,
        config: EmailConfig,
        redis: Any,
        keys: EmailKeys,
        node_id: str,
        process: Process,
    ) -> None:
        assert mailbox.imap is not None
        self.mailbox = mailbox
        self.imap: ImapConfig = mailbox.imap
        self.config = config
        self.redis = redis
        self.keys = keys
        self.node_id = node_id
        self.lease = Lease(redis, keys.lease(mailbox.name), node_id)
        self.process = process
        self.connected = False
        # Another process holds the lease and reads this mailbox.
        self.standby = False
        self.last_error: str | None = None
        self.sessions = 0  # logged-in sessions so far (for tests and logs)

    @property
    def name(self) -> str:
        return self.mailbox.name

    # The outer loop: lease, session, backoff.

    async def run(self) -> None:
        # A server or Redis away is said once when it starts and once when it ends; the
        # retries in between back off (with jitter) up to reconnect_max_s.
        outage = Outage(
            log,
            f"email: mailbox {self.name}",
            first_delay_s=min(1.0, self.config.reconnect_max_s),
            max_delay_s=self.config.reconnect_max_s,
            random_fraction=0.2,
        )
        try:
            while True:
                stop_if_cancelled()
                try:
                    if not await self.lease.acquire():
                        self.standby = True
                        await asyncio.sleep(self.lease.seconds / 3)
                        continue
                    self.standby = False
                    if await self._hold_and_read():
                        outage.succeeded()
                        continue
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    delay = outage.failed(exc)
                else:
                    # The session ended on its own (the server hung up): reconnect as after
                    # a failure, so a server that keeps hanging up is not hammered.
                    delay = outage.failed(ConnectionResetError("the IMAP session ended"))
                await self.lease.release()
                await asyncio.sleep(delay)
        finally:
            self.connected = False
            try:
                await asyncio.shield(self.lease.release())
            except BaseException:
                pass

    async def _hold_and_read(self) -> bool:
        """Read while the lease holds; True when the lease was lost (not an error)."""
        session = asyncio.create_task(self._session(), name=f"imap-{self.name}")
        keeper = asyncio.create_task(self.lease.keep(), name=f"imap-lease-{self.name}")
        try:
            done, _ = await asyncio.wait({session, keeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (session, keeper):
                task.cancel()
            await asyncio.gather(session, keeper, return_exceptions=True)
        if session in done:
            session.result()  # raises what ended the session
            return False
        keeper.result()
        log.info("email: mailbox %s: lease lost; another process reads it now", self.name)
        return True

    # One IMAP session.

    async def _session(self) -> None:
        lost = asyncio.Event()
        client = await connect(self.imap, lambda exc: lost.set())
        try:
            selected = check(
                await client.select(mailbox_name(self.imap.folder)), f"SELECT {self.imap.folder}"
            )
            uidvalidity = self._uidvalidity(selected)
            if self.mailbox.processed_folder:
                # Already there is fine: CREATE answers NO and the MOVE works.
                await client.create(mailbox_name(self.mailbox.processed_folder))
            state = await self.redis.hgetall(self.keys.imap_state(self.name))
            known = state.get(b"uidvalidity", b"").decode()
            last_uid = int(state.get(b"last_uid", b"0"))
            # While a resync is under way: the highest UID it covers.
            floor = int(state[b"floor"]) if b"floor" in state else None
            if known != uidvalidity:
                if known:
                    log.warning(
                        "email: mailbox %s: UIDVALIDITY changed (%s -> %s); fetching the "
                        "folder's unprocessed mail again",
                        self.name,
                        known,
                        uidvalidity,
                    )
                # UIDs from before mean nothing now. What is in the folder (up to UIDNEXT)
                # is read by flag (unseen, or everything in move mode) and deduplicated by
                # Message-ID; what arrives later, by UID.
                last_uid, floor = 0, await self._uidnext(client, selected) - 1
                await self._save(uidvalidity, 0, floor)
            self.connected, self.last_error = True, None
            self.sessions += 1
            use_idle = self.mailbox.idle and client.has_capability("IDLE")
            log.info(
                "email: mailbox %s: reading %s on %s (%s)",
                self.name,
                self.imap.folder,
                self.imap.host,
                "IDLE" if use_idle else f"polling every {self.mailbox.poll_s:g} s",
            )
            while True:
                # Again until a search finds nothing: aioimaplib drops the EXISTS a server
                # sends while another command runs, so mail that arrived while we fetched
                # would otherwise wait for the next IDLE renewal. Mail arriving after the
                # last search is announced in IDLE.
                if floor is not None:
                    await self._resync(client, uidvalidity, floor)
                    last_uid, floor = max(last_uid, floor), None
                found = True
                while found:
                    last_uid, found = await self._fetch_new(client, uidvalidity, last_uid)
                if lost.is_set():
                    raise ConnectionError("the IMAP connection was lost")
                if use_idle:
                    await self._idle(client, lost)
                else:
                    stop_if_cancelled()
                    try:
                        await asyncio.wait_for(lost.wait(), self.mailbox.poll_s)
                    except TimeoutError:
                        pass
                stop_if_cancelled()
        finally:
            self.connected = False
            await disconnect(client)

    def _uidvalidity(self, response: Any) -> str:
        for line in response.lines:
            if isinstance(line, bytes):
                match = re.search(rb"\[UIDVALIDITY (\d+)\]", line)
                if match:
                    return match.group(1).decode()
        raise ImapError("SELECT gave no UIDVALIDITY")

    async def _uidnext(self, client: aioimaplib.IMAP4, selected: Any) -> int:
        for line in selected.lines:
            if isinstance(line, bytes):
                match = re.search(rb"\[UIDNEXT (\d+)\]", line)
                if match:
                    return int(match.group(1))
        # A server that does not say: the highest UID in the folder, plus one.
        found = numbers(check(await client.uid_search("ALL", charset=None), "SEARCH"))
        return max(found, default=0) + 1

    async def _save(self, uidvalidity: str, last_uid: int, floor: int | None = None) -> None:
        key = self.keys.imap_state(self.name)
        fields = {"uidvalidity": uidvalidity, "last_uid": str(last_uid)}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields if floor is None else {**fields, "floor": str(floor)})
            if floor is None:
                pipe.hdel(key, "floor")
            await pipe.execute()

    async def _resync(self, client: aioimaplib.IMAP4, uidvalidity: str, floor: int) -> None:
        """Read the mail that was in the folder when UIDVALIDITY changed (or when the
        mailbox was first read): what is not flagged or moved yet. Progress shows in the
        mailbox itself (flags, moves), so a failure halfway resumes where it stopped."""
        if floor > 0:
            unprocessed = (
                "" if self.mailbox.processed_folder or not self.mailbox.mark_seen else "UNSEEN "
            )
            response = await client.uid_search(
                f"{unprocessed}UNDELETED UID 1:{floor}", charset=None
            )
            for uid in sorted({u for u in numbers(check(response, "SEARCH")) if u <= floor}):
                stop_if_cancelled()
                await self._in_flight(self._one(client, uidvalidity, uid))
        await self._save(uidvalidity, floor)

    async def _fetch_new(
        self, client: aioimaplib.IMAP4, uidvalidity: str, last_uid: int
    ) -> tuple[int, bool]:
        """Store every mail above last_uid; (the new last UID, whether any was found)."""
        response = await client.uid_search(f"UID {last_uid + 1}:*", charset=None)
        # "n:*" matches the last mail even when its UID is below n.
        found = [u for u in numbers(check(response, "SEARCH")) if u > last_uid]
        for uid in sorted(set(found)):
            stop_if_cancelled()
            last_uid = max(uid, last_uid)
            await self._in_flight(self._handle(client, uidvalidity, uid, last_uid))
        return last_uid, bool(found)

    async def _handle(
        self, client: aioimaplib.IMAP4, uidvalidity: str, uid: int, last_uid: int
    ) -> None:
        await self._one(client, uidvalidity, uid)
        await self._save(uidvalidity, last_uid)

    async def _in_flight(self, work: Coroutine[Any, Any, None]) -> None:
        """Run one mail's store-flag-record to its end even when the reader is stopped
        meanwhile (a shutdown): a stop then costs no refetch. The IMAP and Redis timeouts
        bound the wait."""
        task = asyncio.create_task(work)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            try:
                await asyncio.wait_for(task, self.imap.timeout_s * 3)
            except BaseException:
                pass
            raise

    async def _one(self, client: aioimaplib.IMAP4, uidvalidity: str, uid: int) -> None:
        """Fetch, store, flag one mail; returns when it is done with (stored, or skipped
        after too many failures), raises when it should be tried again."""
        sized = check(await client.uid("fetch", str(uid), "(RFC822.SIZE)"), "FETCH size")
        match = re.search(
            rb"RFC822\.SIZE (\d+)",
            b" ".join(bytes(line) for line in sized.lines if isinstance(line, bytes | bytearray)),
        )
        if match is None:
            return  # expunged since the search
        size = int(match.group(1))
        limit = self.config.max_message_bytes
        part = "BODY.PEEK[]" if size <= limit else f"BODY.PEEK[]<0.{limit}>"
        fetched = check(await client.uid("fetch", str(uid), f"({part})"), "FETCH")
        raw = literal(fetched)
        if raw is None:
            return
        try:
            await self.process(self.mailbox, raw, size if size > limit else None)
        except Exception as exc:
            field = f"{uidvalidity}:{uid}"
            key = self.keys.failures(self.name)
            attempts = await self.redis.hincrby(key, field, 1)
            await self.redis.expire(key, FAILURES_TTL_S)
            if attempts < MAX_ATTEMPTS:
                raise
            log.error(
                "email: mailbox %s: UID %d could not be stored after %d attempts; left in "
                "the mailbox unflagged and skipped: %r",
                self.name,
                uid,
                attempts,
                exc,
            )
            return
        await self._done(client, uid)

    async def _done(self, client: aioimaplib.IMAP4, uid: int) -> None:
        """The mail is stored: flag it, or move it out of the folder."""
        folder = self.mailbox.processed_folder
        if self.mailbox.mark_seen:
            check(await client.uid("store", str(uid), "+FLAGS.SILENT (\\Seen)"), "STORE")
        if not folder:
            return
        target = mailbox_name(folder)
        if client.has_capability("MOVE"):
            check(await client.uid("move", str(uid), target), "MOVE")
            return
        check(await client.uid("copy", str(uid), target), "COPY")
        check(await client.uid("store", str(uid), "+FLAGS.SILENT (\\Deleted)"), "STORE")
        if client.has_capability("UIDPLUS"):
            check(await client.uid("expunge", str(uid)), "EXPUNGE")
        # Without UIDPLUS a plain EXPUNGE would also remove what others marked deleted:
        # the copy stays flagged \Deleted for the mailbox's own clean-up.

    async def _idle(self, client: aioimaplib.IMAP4, lost: asyncio.Event) -> None:
        """IDLE until the server reports a change, the renew interval passes, or the
        connection drops."""
        queue = client.protocol.idle_queue
        while not queue.empty():
            queue.get_nowait()
        renew = self.mailbox.idle_renew_s
        idle = await asyncio.wait_for(client.idle_start(timeout=renew), self.imap.timeout_s)
        push = asyncio.ensure_future(client.wait_server_push(timeout=renew + 30))
        dropped = asyncio.ensure_future(lost.wait())
        try:
            # Python 3.11's wait_for (inside aioimaplib, and around idle_start) can swallow
            # a cancellation that lands as it completes; blocking here for the whole renew
            # interval would then hold up shutdown.
            stop_if_cancelled()
            await asyncio.wait({push, dropped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            push.cancel()
            dropped.cancel()
        if lost.is_set():
            idle.cancel()
            raise ConnectionError("the IMAP connection was lost during IDLE")
        if client.has_pending_idle():
            client.idle_done()
        check(await asyncio.wait_for(idle, self.imap.timeout_s), "IDLE")
