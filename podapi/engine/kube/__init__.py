"""Kubernetes YAML: the documents ``kube generate`` builds and ``kube play`` reads.

``generate.py`` maps plain descriptions (:class:`~podapi.engine.kube.generate.PodDescription`,
:class:`~podapi.engine.kube.generate.KubeContainer`) to Kubernetes documents as dicts;
``describe.py`` builds those descriptions from the engine's records; ``service.py`` is the
use case the HTTP layer calls.  ``documents.py`` and ``play.py`` map YAML documents to the
engine's own specs; ``player.py`` is ``kube play``/``kube down``'s use case.  The HTTP
layer dumps the generated dicts; PyYAML's safe loader reads the played ones.
"""
