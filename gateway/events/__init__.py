"""Lifecycle events leaving Zhongtai: webhooks delivered from the tenant's event stream
(router/events.py writes it), their dead letters, and their admin API."""
