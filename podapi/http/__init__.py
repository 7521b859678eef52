"""The HTTP side: Klein routing, errors, headers, streaming, hijacking."""
