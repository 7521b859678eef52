"""``.dockerignore``: Go's ``filepath.Match`` patterns with ``**`` and ``!`` exceptions.

As moby's ``patternmatcher``: each line is a pattern (``#`` comments and blank
lines skipped, surrounding spaces trimmed, cleaned like ``filepath.Clean``, a
leading ``/`` dropped); ``*`` and ``?`` never cross a ``/``, ``**`` matches any
number of directories, ``[...]`` is a class and ``\\`` escapes.  The last
pattern that matches a path decides, ``!`` ones re-including it; a pattern
also matches a path below what it names (``build`` ignores ``build/x``).
"""

import posixpath
import re

from attrs import frozen

from podapi.errors import InvalidArgument


def go_pattern(pattern: str) -> re.Pattern[str]:
    """Go's ``filepath.Match`` syntax (plus ``**``) as an anchored regex."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):
                    out.append("(?:.*/)?")
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 2 if pattern.startswith("[^", i) else i + 1)
            if end < 0:
                raise InvalidArgument(f"syntax error in pattern {pattern!r}")
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
            i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("^" + "".join(out) + "$")


@frozen
class _Pattern:
    regex: re.Pattern[str]
    exclusion: bool


@frozen
class Ignore:
    """The patterns of one ``.dockerignore``."""

    patterns: tuple[_Pattern, ...] = ()

    @classmethod
    def parse(cls, text: str) -> "Ignore":
        """Read a ``.dockerignore``.

        :raises InvalidArgument: a bad pattern (an unclosed ``[``) or a lone ``!``.
        """
        patterns = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exclusion = line.startswith("!")
            if exclusion:
                line = line[1:].strip()
                if not line:
                    raise InvalidArgument('illegal exclusion pattern: "!"')
            cleaned = posixpath.normpath(line).lstrip("/") or "."
            patterns.append(_Pattern(go_pattern(cleaned), exclusion))
        return cls(tuple(patterns))

    @property
    def has_exclusions(self) -> bool:
        """Whether some ``!`` pattern may re-include a path below an ignored directory."""
        return any(p.exclusion for p in self.patterns)

    def ignored(self, path: str) -> bool:
        """Whether ``path`` (relative to the context, ``/``-separated) is left out."""
        parts = path.strip("/").split("/")
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue  # it cannot change the answer
            # The path or one of its parents (moby ``MatchesOrParentMatches``).
            prefixes = ("/".join(parts[:n]) for n in range(len(parts), 0, -1))
            if any(pattern.regex.match(prefix) for prefix in prefixes):
                matched = not pattern.exclusion
        return matched
