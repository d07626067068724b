"""Helpers shared by the test packages; not shipped with closedloop."""
