"""Docker's shell-like word processing for Dockerfile arguments (moby ``shell.Lex``).

``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:+alt}``,
``${VAR+alt}`` and ``${VAR:?message}`` are expanded; single quotes keep their
content literal; double quotes expand variables; a backslash escapes the next
character.  Quotes are removed from the result, as Docker does for ENV, LABEL,
COPY, WORKDIR and the other instructions that take words (never for RUN, CMD
or ENTRYPOINT, whose text the shell reads).
"""

from collections.abc import Mapping

from podapi.errors import InvalidArgument

_NAME_START = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
_NAME_CHARS = _NAME_START + "0123456789"


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str) -> None:
        self._text = text
        self._pos = 0
        self._env = env
        self._escape = escape

    def _peek(self) -> str:
        return self._text[self._pos] if self._pos < len(self._text) else ""

    def _next(self) -> str:
        ch = self._peek()
        self._pos += 1
        return ch

    def words(self, *, split: bool) -> list[str]:
        words: list[str] = []
        current: list[str] = []
        started = False
        while self._pos < len(self._text):
            ch = self._next()
            if split and ch in " \t\r\n":
                if started:
                    words.append("".join(current))
                    current, started = [], False
                continue
            started = True
            if ch == "'":
                current.append(self._single_quoted())
            elif ch == '"':
                current.append(self._double_quoted())
            elif ch == "$":
                current.append(self._variable())
            elif ch == self._escape:
                current.append(self._next())
            else:
                current.append(ch)
        if started:
            words.append("".join(current))
        return words

    def _single_quoted(self) -> str:
        end = self._text.find("'", self._pos)
        if end < 0:
            raise InvalidArgument("unexpected end of statement while looking for matching '")
        value = self._text[self._pos : end]
        self._pos = end + 1
        return value

    def _double_quoted(self) -> str:
        out: list[str] = []
        while True:
            if self._pos >= len(self._text):
                raise InvalidArgument('unexpected end of statement while looking for matching "')
            ch = self._next()
            if ch == '"':
                return "".join(out)
            if ch == "$":
                out.append(self._variable())
            elif ch == self._escape and self._peek() in ('"', "$", self._escape):
                out.append(self._next())
            else:
                out.append(ch)

    def _variable(self) -> str:
        ch = self._peek()
        if ch == "{":
            self._pos += 1
            return self._braced()
        name = self._name()
        if not name:
            return "$"
        return self._env.get(name, "")

    def _name(self) -> str:
        start = self._pos
        if self._peek() and self._peek() in _NAME_START:
            while self._peek() and self._peek() in _NAME_CHARS:
                self._pos += 1
        return self._text[start : self._pos]

    def _braced(self) -> str:
        name = self._name()
        if not name:
            raise InvalidArgument(f"bad substitution in {self._text!r}")
        ch = self._next()
        if ch == "}":
            return self._env.get(name, "")
        colon = ch == ":"
        if colon:
            ch = self._next()
        if ch not in ("-", "+", "?"):
            raise InvalidArgument(f"unsupported modifier ({ch}) in substitution of {name}")
        word = self._until_brace()
        value = self._env.get(name)
        present = value is not None and (value != "" or not colon)
        if ch == "-":
            return value if present and value is not None else word
        if ch == "+":
            return word if present else ""
        if not present:
            raise InvalidArgument(f"{name}: {word or 'is not allowed to be unset'}")
        return value or ""

    def _until_brace(self) -> str:
        out: list[str] = []
        while True:
            if self._pos >= len(self._text):
                raise InvalidArgument(f"missing '}}' in {self._text!r}")
            ch = self._next()
            if ch == "}":
                return "".join(out)
            if ch == "$":
                out.append(self._variable())
            elif ch == self._escape:
                out.append(self._next())
            else:
                out.append(ch)


def expand(text: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """``text`` as one word: variables expanded, quotes and escapes removed.

    :raises InvalidArgument: an unbalanced quote, a bad ``${...}``, or ``${X:?}``
        of an unset variable.
    """
    words = _Lexer(text, env, escape).words(split=False)
    return words[0] if words else ""


def split(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """``text`` split on unquoted whitespace, each word expanded as :func:`expand` does."""
    return _Lexer(text, env, escape).words(split=True)


def key_values(text: str, env: Mapping[str, str], instruction: str) -> list[tuple[str, str]]:
    """``KEY=VALUE ...`` (or the old ``KEY VALUE`` form) of ENV and LABEL, expanded.

    :raises InvalidArgument: as Docker: no argument, or a word without ``=``.
    """
    raw = text.strip()
    if not raw:
        raise InvalidArgument(f"{instruction} requires at least one argument")
    first = raw.split(None, 1)[0]
    if "=" not in first:
        rest = raw[len(first) :].strip()
        if not rest:
            raise InvalidArgument(f"{instruction} names can not be blank")
        return [(expand(first, env), expand(rest, env))]
    pairs = []
    for word in split(raw, env):
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{instruction}: {word!r} is not KEY=VALUE")
        pairs.append((key, value))
    return pairs
