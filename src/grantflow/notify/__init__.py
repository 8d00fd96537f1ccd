"""Notifications: who hears about a request, over which channel, and each message's delivery."""
