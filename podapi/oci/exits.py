"""Noticing container exits: inotify on conmon's exit directory.

conmon writes ``<exit dir>/<container id>`` when a container ends, whether or
not the API service is running.  :class:`ExitWatcher` turns new files into
callbacks and, on start, reports the files already there: exits that happened
while nobody watched.  It does not read or remove the files; the consumer
reads the code (:func:`podapi.oci.conmon.read_exit_file`) and removes the file
once it has recorded it, as Podman's cleanup does.
"""

import os
from collections.abc import Callable

from twisted.internet.inotify import IN_CLOSE_WRITE, IN_ISDIR, IN_MOVED_TO, INotify
from twisted.internet.interfaces import IReactorFDSet
from twisted.python.filepath import FilePath

from podapi.logs import get_logger

log = get_logger(__name__)

#: conmon writes with glib's ``g_file_set_contents``: a temporary
#: ``<id>.XXXXXX`` is closed (IN_CLOSE_WRITE) then renamed (IN_MOVED_TO).
#: IN_CLOSE_WRITE is still watched for writers that write in place.
_MASK = IN_CLOSE_WRITE | IN_MOVED_TO


def is_exit_file_name(name: str) -> bool:
    """True for names that can be exit files: ids, not temporary or hidden files.

    Container and exec ids are hex, so any name with a dot is a temporary file
    (glib's ``<id>.XXXXXX``) or something else that is not ours.
    """
    return bool(name) and "." not in name


class ExitWatcher:
    """Calls ``callback(container_id)`` when an exit file appears in ``exit_dir``.

    Delivery is at least once: a file written while :meth:`start` scans the
    directory can be reported by the scan and by its event, so the consumer
    must treat a report for an id it has already handled (and whose file it
    removed) as nothing to do.

    :param reactor: the reactor the inotify descriptor is registered with.
    :param exit_dir: the directory given to conmon as ``--exit-dir``; it must exist.
    :param callback: called with the file's name (the container id).
    """

    def __init__(
        self, reactor: IReactorFDSet, exit_dir: str, callback: Callable[[str], object]
    ) -> None:
        self._reactor = reactor
        self.exit_dir = exit_dir
        self._callback = callback
        self._inotify: INotify | None = None

    def start(self) -> None:
        """Watch the directory, then report the exit files already present."""
        if self._inotify is not None:
            return
        notifier = INotify(self._reactor)
        try:
            # Watch before scanning, so an exit between the two is not lost.
            notifier.watch(FilePath(self.exit_dir), mask=_MASK, callbacks=[self._event])
        except BaseException:
            notifier.loseConnection()
            raise
        notifier.startReading()
        self._inotify = notifier
        self.rescan()

    def rescan(self) -> None:
        """Report every exit file present now.

        For start-up, and for a consumer that suspects lost events (the
        kernel drops events when its queue overflows, and Twisted's INotify
        does not pass the overflow on).
        """
        for name in sorted(os.listdir(self.exit_dir)):
            if is_exit_file_name(name) and os.path.isfile(os.path.join(self.exit_dir, name)):
                self._report(name)

    def stop(self) -> None:
        """Stop watching (idempotent)."""
        notifier, self._inotify = self._inotify, None
        if notifier is not None:
            notifier.loseConnection()

    def _event(self, _ignored: object, path: FilePath[bytes], mask: int) -> None:
        if mask & IN_ISDIR or not mask & _MASK:
            # IN_IGNORED and friends arrive whatever the mask says.
            return
        name = os.fsdecode(path.basename())
        if is_exit_file_name(name):
            self._report(name)

    def _report(self, container_id: str) -> None:
        try:
            self._callback(container_id)
        except Exception:
            # One consumer bug must not stop the reports for other containers.
            log.failure("exit callback failed for {container_id}", container_id=container_id)
