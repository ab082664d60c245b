"""An offline stand-in for DashScope's native text-generation API, for development and tests."""
