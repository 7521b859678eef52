"""Building images from Dockerfiles: Docker's classic builder (``POST /build``).

:mod:`.dockerfile` parses, :mod:`.words` expands variables, :mod:`.ignore` reads
``.dockerignore``, :mod:`.context` extracts the context and copies from it,
:mod:`.config` applies the metadata instructions, :mod:`.steps` runs RUN and
COPY/ADD in working containers, :mod:`.builder` walks the stages with the layer
cache of :mod:`.cache`.
"""
