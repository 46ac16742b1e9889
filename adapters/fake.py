"""The fake channel's old address: the entry point ``fake = "adapters.fake:FakeAdapter"`` and
existing imports keep working. The code lives in the test kit, :mod:`adapters.testing`."""

from adapters.testing.fake import FakeAdapter, FakeConfig, Recorder

__all__ = ["FakeAdapter", "FakeConfig", "Recorder"]
