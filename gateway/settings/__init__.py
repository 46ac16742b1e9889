"""The core tables' Structs and the checks their types cannot state, a module per concept
(who signs in, the process's own ports and logs, conversations), so that each stays small and
a new key has one obvious home. gateway/config.py composes them into ``CoreConfig``, decodes
the file and re-exports every name, so callers keep importing from ``gateway.config``."""
