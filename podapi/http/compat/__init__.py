"""Docker Engine API handlers (one module per area)."""
