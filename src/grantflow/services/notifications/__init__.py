"""Notices about requests and their delivery (outbox, channels)."""
