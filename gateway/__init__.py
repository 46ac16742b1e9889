"""Zhongtai gateway: the process, its config, HTTP routes and the agent socket."""

__version__ = "0.1.0"
