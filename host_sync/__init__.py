"""Laptop side of AlgoDose (CPython only): `python -m host_sync scan | pair | pull | status |
set-time | patients push FILE` over BLE into SQLite (docs/protocol.md). It imports the
firmware's `core` (record, protocol) as an installed package: one wire format, one record
format, shared with the device."""
