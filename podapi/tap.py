"""``twistd podapi [options] [URI]``: command-line options and ``makeService``.

This is the only module that imports the global reactor.
"""

import getopt
import ipaddress
import os
import sys
from typing import TYPE_CHECKING, cast

from twisted.application.service import IService
from twisted.python import usage

from podapi.access import AccessError, group_id
from podapi.config import BRIDGE_NAME_MAX, Config, NetworkConfig, TLSFiles
from podapi.listen import (
    ListenError,
    activated_address,
    default_uri,
    parse_uri,
    prepare_socket_path,
    take_activation,
)
from podapi.logs import LEVELS, set_level

if TYPE_CHECKING:
    from podapi.service import IServiceReactor


def _seconds(value: str) -> float:
    seconds = float(value)
    if seconds < 0:
        raise ValueError("the timeout cannot be negative")
    return seconds


class Options(usage.Options):
    """Options of ``podman system service``, plus podapi's storage paths."""

    synopsis = "[options] [URI]"
    longdesc = (
        "Serve the Docker Engine API and the Libpod API on URI (default: "
        "unix:///run/podman/podman.sock as root, "
        "unix://$XDG_RUNTIME_DIR/podman/podman.sock otherwise; under systemd "
        "socket activation, the socket passed). URI may be "
        "unix:///abs/path.sock, tcp://host:port or any Twisted server endpoint "
        "string such as systemd:domain=UNIX:index=0."
    )
    optParameters = [  # noqa: RUF012 (Twisted's declarative API)
        [
            "timeout",
            "t",
            5.0,
            "Seconds of inactivity before the service exits; 0 = never.",
            _seconds,
        ],
        ["cors", None, None, "Value of Access-Control-Allow-Origin (no CORS when unset)."],
        ["root", None, "/var/lib/podapi", "Directory for persistent state."],
        ["runroot", None, "/run/podapi", "Directory for volatile state."],
        ["log-level", None, "warn", f"One of {', '.join(LEVELS)}."],
        ["runtime", None, None, "OCI runtime to use (crun, runc or a path); default: detect."],
        ["default-network", None, "podman", "Name of the default network."],
        ["default-bridge", None, "podman0", "Bridge interface of the default network."],
        ["default-subnet", None, "10.88.0.0/16", "Subnet of the default network."],
        ["subnet-pool", None, "10.89.0.0/16", "Where new networks get a free /24 from."],
        ["bridge-prefix", None, "podman", "New networks' bridges are named PREFIX1, PREFIX2..."],
        ["group", None, None, "Group given the UNIX socket (mode 0660); default: 0600."],
        ["tls-cert", None, None, "PEM certificate: serve the TCP listener over TLS."],
        ["tls-key", None, None, "PEM private key of --tls-cert."],
        ["tls-client-ca", None, None, "PEM CAs: accept only clients whose certificate they sign."],
        ["header-timeout", None, 60.0, "Seconds a request's headers may take.", _seconds],
        [
            "max-connections",
            None,
            None,
            "Open connections at most (default: RLIMIT_NOFILE/2).",
            int,
        ],
    ]

    def parseOptions(self, options: list[str] | None = None) -> None:
        """Accept options after the URI too (``podapi unix:///x.sock -t 2``), as Podman does.

        Twisted's parser stops at the first positional argument; GNU getopt
        does not, so options are collected first and the URI moved last.
        """
        argv = sys.argv[1:] if options is None else options
        try:
            opts, args = getopt.gnu_getopt(argv, self.shortOpt, self.longOpt)
        except getopt.GetoptError as e:
            raise usage.UsageError(str(e)) from None
        ordered: list[str] = []
        for name, value in opts:
            if name.startswith("--"):
                takes_value = name[2:] + "=" in self.longOpt
                ordered.append(f"{name}={value}" if takes_value else name)
            else:
                ordered += [name, value] if name[1] + ":" in self.shortOpt else [name]
        super().parseOptions([*ordered, "--", *args])

    def opt_time(self, value: str) -> None:
        """Alias of --timeout (Podman's spelling)."""
        try:
            self["timeout"] = _seconds(value)
        except ValueError as e:
            raise usage.UsageError(f"invalid --time value {value!r}: {e}") from None

    def parseArgs(self, uri: str | None = None) -> None:
        """At most one positional argument: the listen URI."""
        self["uri"] = uri

    def postOptions(self) -> None:
        """Validate the combination and resolve the listen address."""
        if self["log-level"] not in LEVELS:
            raise usage.UsageError(
                f"invalid --log-level {self['log-level']!r}: choose one of {', '.join(LEVELS)}"
            )
        for name in ("root", "runroot"):
            if not os.path.isabs(self[name]):
                raise usage.UsageError(f"--{name} must be an absolute path")
        for name in ("default-subnet", "subnet-pool"):
            try:
                ipaddress.ip_network(self[name])
            except ValueError as e:
                raise usage.UsageError(f"invalid --{name} {self[name]!r}: {e}") from None
        if not 0 < len(self["default-bridge"]) <= BRIDGE_NAME_MAX:
            raise usage.UsageError(f"--default-bridge must have 1 to {BRIDGE_NAME_MAX} characters")
        if len(self["bridge-prefix"]) > BRIDGE_NAME_MAX - 3:
            raise usage.UsageError(f"--bridge-prefix may have {BRIDGE_NAME_MAX - 3} characters")
        try:
            # Before anything imports twisted.internet.endpoints (see podapi.listen).
            activation = take_activation()
            uri = self["uri"]
            address = activated_address(activation) if uri is None else None
            self["listen"] = address or parse_uri(uri or default_uri(), activation)
        except ListenError as e:
            raise usage.UsageError(str(e)) from None
        self._access_options()

    def _access_options(self) -> None:
        """``--group`` needs a UNIX socket; the TLS files a TCP listener, cert and key both."""
        if self["group"] is not None:
            if self["listen"].socket_path is None:
                raise usage.UsageError("--group applies to a UNIX socket only")
            try:
                self["socket-gid"] = group_id(self["group"])
            except AccessError as e:
                raise usage.UsageError(str(e)) from None
        tls = (self["tls-cert"], self["tls-key"], self["tls-client-ca"])
        self["tls"] = None
        if any(tls):
            if not (self["tls-cert"] and self["tls-key"]):
                raise usage.UsageError("--tls-cert and --tls-key go together")
            if not self["listen"].plain_tcp:
                raise usage.UsageError("TLS applies to a tcp:// listener only")
            self["tls"] = TLSFiles(*tls)

    def config(self) -> Config:
        """The validated options as a :class:`Config`."""
        return Config(
            root=self["root"],
            runroot=self["runroot"],
            listen=self["listen"],
            timeout=self["timeout"],
            cors=self["cors"],
            log_level=self["log-level"],
            runtime=self["runtime"],
            socket_gid=self.get("socket-gid"),
            tls=self["tls"],
            header_timeout=self["header-timeout"],
            max_connections=self["max-connections"],
            network=NetworkConfig(
                default_name=self["default-network"],
                default_bridge=self["default-bridge"],
                default_subnet=self["default-subnet"],
                subnet_pool=self["subnet-pool"],
                bridge_prefix=self["bridge-prefix"],
            ),
        )


def makeService(options: Options) -> IService:
    """Build the service tree; refuse to start on a socket a live server answers."""
    config = options.config()
    set_level(config.log_level)
    if config.listen.socket_path is not None:
        try:
            prepare_socket_path(config.listen.socket_path)
        except ListenError as e:
            raise SystemExit(f"podapi: {e}") from None
        except OSError as e:
            raise SystemExit(f"podapi: cannot prepare {config.listen.socket_path}: {e}") from None

    # Imported here, not at module level: twistd imports this module while
    # parsing options, before it installs the reactor chosen with --reactor;
    # and the service pulls in twisted.internet.endpoints, which must not be
    # imported before socket activation is read (podapi.listen).
    from twisted.internet import reactor  # noqa: PLC0415

    from podapi.service import PodAPIService  # noqa: PLC0415

    # Twisted types the global reactor as its common interfaces only; the
    # installed (posix) reactor provides UNIX sockets and threads too.
    return PodAPIService(config, cast("IServiceReactor", reactor))
