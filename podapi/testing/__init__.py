"""Fakes shared by tests: clocks, inline thread pools, fake process runners."""
