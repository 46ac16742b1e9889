"""A private Dovecot IMAP server for the tests: its own dovecot.conf in a temporary dir,
127.0.0.1 on a free port, plaintext login without TLS, a passwd-file of test users, maildirs
in the temporary dir. Started and stopped by the suite; it never touches the system's
Dovecot (its base_dir, state and logs are all in the temporary dir).

Running as root, Dovecot insists on dropping privileges: its login processes must not run as
root and neither may mail access, so the login processes run as ``dovenull``, the internal
ones as ``dovecot`` (the users Debian's package creates) and mail access as ``nobody``, who
owns the maildirs. As any other user, everything runs as that user.

Test mail arrives with IMAP APPEND, as a mail server's delivery would put it there.
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from helpers import free_port

from gateway.redis.embedded import _parent_death_hook

NOT_FOUND = "dovecot not found: apt-get install dovecot-imapd (Debian package dovecot-imapd)"
STARTUP_TIMEOUT_S = 20.0
POOL_SIZE = 100


def find_dovecot() -> str | None:
    """dovecot on PATH, else Debian's /usr/sbin/dovecot (sbin is not on every user's PATH)."""
    found = shutil.which("dovecot")
    if found:
        return found
    if os.access("/usr/sbin/dovecot", os.X_OK):
        return "/usr/sbin/dovecot"
    return None


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class Dovecot:
    """One dovecot process. ``add_user()`` makes a mailbox; ``append()`` delivers to it."""

    def __init__(self, binary: str | None = None, port: int | None = None) -> None:
        self.binary = binary or find_dovecot()
        if self.binary is None:
            raise RuntimeError(NOT_FOUND)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.dir = Path(tempfile.mkdtemp(prefix="zt-dovecot-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.users: dict[str, str] = {}
        self._as_root = os.geteuid() == 0
        if self._as_root:
            self.mail_user = "nobody"
            group = grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
            self.mail_group = group
            self.login_user = "dovenull" if _user_exists("dovenull") else "nobody"
            self.internal_user = "dovecot" if _user_exists("dovecot") else "nobody"
            self.internal_group = grp.getgrgid(pwd.getpwnam(self.internal_user).pw_gid).gr_name
        else:
            me = pwd.getpwuid(os.getuid())
            self.mail_user = self.login_user = self.internal_user = me.pw_name
            self.mail_group = self.internal_group = grp.getgrgid(os.getgid()).gr_name
        self._setup_dirs()

    # Files.

    @property
    def conf(self) -> Path:
        return self.dir / "dovecot.conf"

    @property
    def log(self) -> Path:
        return self.dir / "dovecot.log"

    def _setup_dirs(self) -> None:
        # Dovecot's unprivileged processes must reach the passwd file and the maildirs.
        os.chmod(self.dir, 0o755)
        for sub in ("run", "state", "mail", "home"):
            (self.dir / sub).mkdir()
        if self._as_root:
            uid = pwd.getpwnam(self.mail_user).pw_uid
            gid = grp.getgrnam(self.mail_group).gr_gid
            for sub in ("mail", "home"):
                os.chown(self.dir / sub, uid, gid)
        self._pool: list[tuple[str, str]] = []
        for _ in range(POOL_SIZE):
            name, password = "u" + secrets.token_hex(5), secrets.token_hex(8)
            self.users[name] = password
            self._pool.append((name, password))
        self._write_passwd()

    def _write_conf(self) -> None:
        d = self.dir
        # Only root can chroot: as anyone else, the services that chroot by default must not.
        chroot = "" if self._as_root else "  chroot =\n"
        unprivileged = "" if self._as_root else "service anvil {\n  chroot =\n}\n"
        self.conf.write_text(
            f"""# Written by the Zhongtai test suite.
base_dir = {d}/run
state_dir = {d}/state
instance_name = zt-test-{self.port}
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {self.internal_user}
default_internal_group = {self.internal_group}
default_login_user = {self.login_user}
mail_uid = {self.mail_user}
mail_gid = {self.mail_group}
first_valid_uid = 0
first_valid_gid = 0
log_path = {self.log}
mail_location = maildir:{d}/mail/%u
mail_fsync = never
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/passwd
  default_fields = home={d}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
{chroot}}}
{unprivileged}service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""
        )

    def add_user(self) -> tuple[str, str]:
        """A mailbox of its own for a test: (user name, password).

        Users come from a pool written before Dovecot starts: Dovecot rereads a changed
        passwd-file at most once a second, and a login that fails meanwhile earns every
        later login from 127.0.0.1 a growing penalty delay. Past the pool, the file is
        rewritten and we wait for the new user to work."""
        if self._pool:
            return self._pool.pop(0)
        name, password = "u" + secrets.token_hex(5), secrets.token_hex(8)
        self.users[name] = password
        self._write_passwd()
        deadline = time.monotonic() + 10
        while self.process is not None and not self._can_login(name, password):
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot does not know the new user {name}")
            time.sleep(1.1)
        return name, password

    def _write_passwd(self) -> None:
        lines = [f"{u}:{{PLAIN}}{p}::::{self.dir}/home/{u}::" for u, p in self.users.items()]
        tmp = self.dir / "passwd.tmp"
        tmp.write_text("\n".join(lines) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.dir / "passwd")

    def _can_login(self, user: str, password: str) -> bool:
        try:
            conn = imaplib.IMAP4(self.host, self.port, timeout=5)
        except OSError:
            return False
        try:
            conn.login(user, password)
            return True
        except imaplib.IMAP4.error:
            return False
        finally:
            with contextlib.suppress(Exception):
                conn.logout()

    # The process.

    def start(self) -> Dovecot:
        if not self.conf.exists():
            self._write_conf()
        assert self.binary is not None
        offset = self.log.stat().st_size if self.log.exists() else 0
        # The child keeps its own copy of the descriptor; ours closes at once.
        with open(self.dir / "stderr.log", "ab") as stderr:
            self.process = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
                # A test run killed hard must not leave a dovecot behind.
                preexec_fn=_parent_death_hook(),
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited while starting:\n{self._tail(offset)}")
            if self._greets():
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dovecot did not answer within {STARTUP_TIMEOUT_S:g} s")
            time.sleep(0.02)

    def _greets(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                return sock.recv(64).startswith(b"* OK")
        except OSError:
            return False

    def _tail(self, offset: int = 0) -> str:
        parts = []
        for name in ("stderr.log", "dovecot.log"):
            path = self.dir / name
            if path.exists():
                parts.append(path.read_bytes()[offset if name == "dovecot.log" else 0 :][-3000:])
        return b"\n".join(parts).decode(errors="replace")

    def stop(self) -> None:
        """SIGTERM to our own child and wait until its port is free, so that a restart on the
        same port works."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self._greets():
            time.sleep(0.02)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # Mail.

    @contextlib.contextmanager
    def client(self, user: str) -> Iterator[imaplib.IMAP4]:
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            conn.login(user, self.users[user])
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.logout()

    def append(self, user: str, raw: bytes, folder: str = "INBOX", flags: str = "") -> int:
        """Deliver a mail; returns its UID."""
        with self.client(user) as conn:
            if folder != "INBOX":
                conn.create(folder)
            status, data = conn.append(folder, flags or None, None, raw)
            assert status == "OK", data
            match = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
            return int(match.group(1)) if match else 0

    def flags(self, user: str, folder: str = "INBOX") -> dict[int, set[str]]:
        """UID -> flags of every mail in the folder."""
        with self.client(user) as conn:
            status, _ = conn.select(folder, readonly=True)
            if status != "OK":
                return {}
            _, data = conn.uid("FETCH", "1:*", "(UID FLAGS)")
        found: dict[int, set[str]] = {}
        for item in data:
            if not item:
                continue
            line = item if isinstance(item, bytes) else item[0]
            match = re.search(rb"UID (\d+) FLAGS \(([^)]*)\)", line)
            if match:
                found[int(match.group(1))] = set(match.group(2).decode().split())
        return found

    def messages(self, user: str, folder: str = "INBOX") -> list[bytes]:
        with self.client(user) as conn:
            status, _ = conn.select(folder, readonly=True)
            if status != "OK":
                return []
            _, data = conn.uid("FETCH", "1:*", "(BODY.PEEK[])")
        return [item[1] for item in data if isinstance(item, tuple)]

    def recreate(self, user: str, folder: str) -> None:
        """Delete and create a folder again: a new UIDVALIDITY."""
        with self.client(user) as conn:
            conn.delete(folder)
            conn.create(folder)

    def uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        with self.client(user) as conn:
            _, data = conn.status(folder, "(UIDVALIDITY)")
        match = re.search(rb"UIDVALIDITY (\d+)", data[0])
        assert match
        return int(match.group(1))
