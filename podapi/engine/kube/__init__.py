"""Kubernetes YAML: the documents ``kube generate`` builds (and, later, ``kube play`` reads).

``generate.py`` maps plain descriptions (:class:`~podapi.engine.kube.generate.PodDescription`,
:class:`~podapi.engine.kube.generate.KubeContainer`) to Kubernetes documents as dicts;
``describe.py`` builds those descriptions from the engine's records; ``service.py`` is the
use case the HTTP layer calls.  No YAML here: the HTTP layer dumps the dicts.
"""
