"""Shared test helpers (fake external services)."""
