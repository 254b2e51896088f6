"""Concurrent TCP port probe."""
