"""Sinks: consume committed Events from the store (the outbox) and deliver them upstream."""
