"""A private ``redis-server`` process that this process starts, owns and stops.

Two users: ``zhongtai serve`` when no Redis URL is configured (persistent: data and AOF in the
data dir, so a restart keeps conversations), and the test suite (ephemeral: a temporary dir, no
persistence). The server binds 127.0.0.1 (or a unix socket) only, on a port found free at start.

It never touches a server it did not start: it stops its own child by signal rather than by
sending SHUTDOWN to a port (which, after a crash and a port reuse, could be someone else's), it
checks that the server answering on its port is its own child (``INFO server`` ``process_id``),
and it refuses a data dir whose pidfile names a live redis-server instead of sharing its files.

The pieces: ``binary`` finds the executable, ``ports`` the TCP port, ``run_dir`` writes the
config and reads the pidfile and log in the server's directory, ``probe`` asks the port who
answers, ``child`` ties the child's life to ours, and ``server`` puts them together in
``RedisServer``. Everything callers use is importable from here.
"""

from gateway.redis.embedded.binary import INSTALL_HINT, find_redis_server
from gateway.redis.embedded.child import parent_death_hook as _parent_death_hook
from gateway.redis.embedded.errors import RedisServerError
from gateway.redis.embedded.ports import pick_free_port, port_is_free
from gateway.redis.embedded.server import RedisServer

__all__ = [
    "INSTALL_HINT",
    "RedisServer",
    "RedisServerError",
    "_parent_death_hook",
    "find_redis_server",
    "pick_free_port",
    "port_is_free",
]
