"""Libpod API handlers (one module per area)."""
