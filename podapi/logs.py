"""Logging with Podman's ``--log-level`` applied to podapi's own messages.

twistd owns the log observers, so rather than replacing them we give every
podapi ``Logger`` an observer that filters by level before handing events to
the global publisher.  Twisted's own messages are unaffected.
"""

from twisted.logger import (
    FilteringLogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogPublisher,
)

#: Podman's level names (logrus) and the Twisted level each maps to.
LEVELS: dict[str, LogLevel] = {
    "trace": LogLevel.debug,
    "debug": LogLevel.debug,
    "info": LogLevel.info,
    "warn": LogLevel.warn,
    "warning": LogLevel.warn,
    "error": LogLevel.error,
    "fatal": LogLevel.critical,
    "panic": LogLevel.critical,
}

_predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)
_observer = FilteringLogObserver(globalLogPublisher, [_predicate])


def get_logger(namespace: str) -> Logger:
    """A logger for ``namespace`` (pass ``__name__``) honouring ``--log-level``."""
    return Logger(namespace=namespace, observer=_observer)


def set_level(name: str) -> None:
    """Apply a Podman log level name; raise ``KeyError`` for an unknown one."""
    _predicate.setLogLevelForNamespace("", LEVELS[name])


def enabled(namespace: str, level: LogLevel) -> bool:
    """Whether ``namespace`` logs at ``level`` (to skip costly formatting)."""
    return bool(level >= _predicate.logLevelForNamespace(namespace))
