"""The start-up floor: Twisted and Klein alone answering ``/_ping`` on a UNIX socket.

    .venv/bin/python bench/floor.py SOCKET

Imports the reactor, ``twisted.web`` and Klein, listens on ``SOCKET`` and
answers ``GET /_ping`` with ``OK`` until SIGTERM.  ``bench.perf`` times it as
it times the servers (exec to the first 200 on ``/_ping``): podapi's cold start
can come no lower than this, and issue 15's target is at most 50 ms above it.
It stays a plain script, importing nothing of podapi or bench, so the figure is
the libraries' own.
"""

import sys

from klein import Klein
from twisted.internet import reactor
from twisted.web.server import Request, Site

app = Klein()


@app.route("/_ping")
def ping(request: Request) -> bytes:
    return b"OK"


def main() -> None:
    reactor.listenUNIX(sys.argv[1], Site(app.resource()))  # type: ignore[attr-defined]
    reactor.run()


if __name__ == "__main__":
    main()
