"""twistd dropin: ``twistd podapi [options] [URI]``."""

from twisted.application.service import ServiceMaker

podapi = ServiceMaker(
    "podapi", "podapi.tap", "Podman-compatible API service (Docker and Libpod APIs)", "podapi"
)
