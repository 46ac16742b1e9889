"""The integrator's test kit: what an adapter's tests need and the gateway's tests use too.

- :class:`MemoryHost`, an :class:`adapters.contract.AdapterHost` in memory, to unit test an
  adapter without a gateway (``from adapters.testing import MemoryHost``);
- :class:`FakeAdapter`, a channel in memory, to test the gateway (or a whole deployment's
  config) without a real channel; it is the installed adapter ``fake``.

Like every adapter module, the kit imports nothing from the gateway, router or presence
packages: an adapter's own test suite needs only this package and its adapter.
"""

from adapters.testing.fake import FakeAdapter, FakeConfig, Recorder
from adapters.testing.host import Conversation, Lookup, MemoryHost, NodeMessage

__all__ = [
    "Conversation",
    "FakeAdapter",
    "FakeConfig",
    "Lookup",
    "MemoryHost",
    "NodeMessage",
    "Recorder",
]
