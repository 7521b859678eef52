"""The HTTP layer: Klein routing, request decoding, JSON encoding, streaming, hijacking.

One layout rule for the two API dialects:

* ``http/compat/<area>.py``: the Docker tree's routes of an area (``Compat<Area>Routes``)
  and its Docker-only decoders and encoders.
* ``http/libpod/<area>.py``: the Libpod tree's routes of an area (``Libpod<Area>Routes``)
  and its Podman-only decoders and encoders.
* ``http/both/<area>.py``: route groups that Podman serves with one handler on both trees
  (``_ping``/``version``, exec, ``docker cp``/export, stats), and the pieces both trees of
  an area share (container list selection, logs, top; image listing and archives; commit
  options; network settings).
* ``http/*.py``: the machinery, no routes (router, the request as handlers see it, errors,
  responses, the site, streaming producers, hijacked sessions).

Handlers decode, make one engine call and encode; nothing here imports ``podapi.oci``
(``tests/unit/test_layering.py``).
"""
