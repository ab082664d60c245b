"""Accounts: registration, login and the bearer tokens every other /api route requires."""
