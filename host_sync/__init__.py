"""Laptop side of AlgoDose (CPython only): BLE and USB sync, SQLite store, export, reports.

Empty so far: the sync issue builds it on the device's record store (DESIGN §6).
"""
