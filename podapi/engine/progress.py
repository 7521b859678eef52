"""Steps of a pull or push, reported to the caller as they happen.

Each API dialect renders them its own way (Docker ``JSONMessage`` lines, Podman
``stream`` lines).
"""

from collections.abc import Callable

from attrs import frozen


@frozen
class Progress:
    """A step of a pull or push.

    :ivar kind: ``resolving``, ``layer``, ``config``, ``manifest`` or ``done``.
    :ivar digest: the blob concerned (layer, config), if any.
    :ivar status: for layers: ``waiting``, ``exists``, ``downloading``,
        ``downloaded``, ``extracting``, ``complete``, ``pushing``, ``pushed``.
    """

    kind: str
    status: str = ""
    digest: str = ""
    current: int = 0
    total: int = 0
    text: str = ""


ProgressSink = Callable[[Progress], None]


def ignore_progress(progress: Progress) -> None:
    """A progress sink that drops everything."""
