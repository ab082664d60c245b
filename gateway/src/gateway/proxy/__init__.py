"""Forwarding authenticated /api calls to the service that owns them, streams passed through as they come."""
