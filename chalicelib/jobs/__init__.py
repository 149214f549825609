"""Scheduled and queued entry points: thin, like the HTTP ones."""
