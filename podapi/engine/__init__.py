"""The engine: domain logic and state. No HTTP, no argv."""
