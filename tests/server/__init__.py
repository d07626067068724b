"""Tests of closedloop.server: OTLP/HTTP request decoding and span conversion."""
