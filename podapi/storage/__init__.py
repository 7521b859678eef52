"""Layer and image store: blobs, layers, archives, registry client."""
