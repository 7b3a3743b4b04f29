"""Tests of the Sans-I/O protocol core (``django_websocket.protocol``), by RFC section."""
