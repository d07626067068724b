"""Stores for exporter tests that need one that refuses every insert."""

from __future__ import annotations

from _support.collector import free_port


def dead_store_url() -> str:
    """A ClickHouse server URL on a free port: nothing listens, so every insert is refused
    at once (an outage without waiting for timeouts)."""
    return f"clickhouse://default:@127.0.0.1:{free_port()}/closedloop"
