"""Notifications: who hears about a request, over which channel, and the delivery of each message."""
