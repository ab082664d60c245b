"""Users: the caller's profile and their DashScope API key (stored encrypted)."""
