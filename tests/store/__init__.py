"""Tests of closedloop.store: schema and migrations, views, exporter, rescue."""
