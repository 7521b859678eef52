"""Where the engine keeps things under ``--root`` (persistent) and ``--runroot`` (volatile)."""

import os

from attrs import frozen


@frozen
class Layout:
    """Paths derived from the two roots; see ARCHITECTURE.md "Where data lives"."""

    root: str
    runroot: str

    @property
    def database(self) -> str:
        """The SQLite state database."""
        return os.path.join(self.root, "podapi.db")

    @property
    def events_dir(self) -> str:
        """The persisted event log (``events.log`` plus one rotated file)."""
        return os.path.join(self.root, "events")

    @property
    def spool_dir(self) -> str:
        """Uploaded request bodies too big for memory (image loads, archives)."""
        return os.path.join(self.root, "tmp")

    def create(self) -> None:
        """Create the directories (blocking: call from a thread)."""
        for path in (self.root, self.events_dir, self.spool_dir):
            os.makedirs(path, mode=0o700, exist_ok=True)
        os.makedirs(self.runroot, mode=0o700, exist_ok=True)
