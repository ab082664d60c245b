"""Root fixtures for every test folder; they live in `testkit.py`, which tests import helpers from."""

from testkit import *  # noqa: F403 - re-exports the session fixtures so pytest finds them
