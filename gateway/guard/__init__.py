"""Limits on the public port that protect the gateway from clients rather than route work:
deadlines for slow clients (deadlines.py) and caps on open connections (caps.py)."""
