"""What the two trees' secret routes share: Podman's ``SecretInfoReport`` encoder.

Shape: Podman's ``entities.SecretInfoReport`` (``ID``, ``CreatedAt``, ``UpdatedAt``,
``Spec{Name, Driver{Name, Options}, Labels}``); the compat tree adds Docker's
``Version{Index}`` (``SecretInfoReportCompat``).  Differences from Podman 4.3.1, on
purpose: ``Spec.Labels`` is the labels given everywhere (4.3.1: null in lists) and
``Spec.Driver.Options`` never holds the storage path (4.3.1 shows it as ``path``).
"""

from typing import Any

from podapi.engine.state.secrets import SecretRecord
from podapi.engine.times import rfc3339_nano


def encode_report(record: SecretRecord) -> dict[str, Any]:
    """Podman's ``SecretInfoReport`` (no data)."""
    return {
        "ID": record.id,
        "CreatedAt": rfc3339_nano(record.created),
        "UpdatedAt": rfc3339_nano(record.updated),
        "Spec": {
            "Name": record.name,
            "Driver": {"Name": record.driver, "Options": dict(record.options)},
            "Labels": dict(record.labels),
        },
    }
