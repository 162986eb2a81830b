"""Stores: where instances, history, deadlines and the outbox are kept."""
