"""The failures of the embedded Redis: one for callers, one the start-up retries on."""


class RedisServerError(RuntimeError):
    """The embedded Redis could not be found, started or reached."""


class PortTaken(Exception):
    """Our child could not bind its port: another process took it after we chose it."""
