"""podapi: Podman's REST API service (Docker Engine API + Libpod API) on Twisted."""

__version__ = "0.1.0"

#: The Docker Engine API version we speak on the compat tree.
COMPAT_API_VERSION = "1.44"
#: The oldest Docker API version clients may use with us.
COMPAT_MIN_API_VERSION = "1.24"
#: The Podman (libpod) API version we implement; podman-remote refuses < 4.0.0.
LIBPOD_API_VERSION = "5.4.0"
LIBPOD_MIN_API_VERSION = "4.0.0"
