"""Registry credentials, ``WWW-Authenticate`` challenges and the bearer-token cache.

The pieces of the distribution auth protocol that need no network: what a
client sends us (Docker's ``X-Registry-Auth`` header or a ``POST /auth`` body),
what a registry asks for (RFC 7235 challenges, as the registry token spec uses
them: https://distribution.github.io/distribution/spec/auth/token/) and how
long a token it gave us stays usable.  :mod:`podapi.storage.registry` does the
talking.
"""

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from attrs import field, frozen
from twisted.internet.interfaces import IReactorTime

from podapi.errors import InvalidArgument

#: Tokens without ``expires_in`` last 60 seconds (token spec, "Token Response Fields").
DEFAULT_TOKEN_LIFETIME = 60
#: Renew this many seconds early so a token does not expire in flight.
TOKEN_MARGIN = 10

_DOCKER_KEYS = frozenset(
    {"username", "password", "auth", "email", "serveraddress", "identitytoken", "registrytoken"}
)


@frozen
class Credentials:
    """What a client gave us to authenticate to a registry.

    The secrets are left out of ``repr`` so credentials never reach a log by
    accident.  Instances are hashable and key the token cache: one user's
    token is never reused for another.

    :ivar username: basic-auth user (or the account for a token server).
    :ivar password: basic-auth password.
    :ivar identity_token: an OAuth2 refresh token from an earlier login.
    :ivar registry_token: a bearer token to send to the registry as is.
    :ivar server_address: the registry the client named (Docker's ``serveraddress``).
    """

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    registry_token: str = field(default="", repr=False)
    server_address: str = ""

    @property
    def empty(self) -> bool:
        """True when there is nothing to authenticate with."""
        return not (self.username or self.password or self.identity_token or self.registry_token)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Credentials":
        """From Docker's ``AuthConfig`` JSON (``X-Registry-Auth`` or the ``POST /auth`` body).

        ``auth`` (base64 of ``user:password``) fills in a missing username or
        password, as Docker's registry package does.  Keys are matched without
        regard to case because clients disagree (``identitytoken`` vs
        ``IdentityToken``).
        """
        lower = {str(k).lower(): v for k, v in data.items()}

        def text(key: str) -> str:
            value = lower.get(key)
            return value if isinstance(value, str) else ""

        username, password = text("username"), text("password")
        auth = text("auth")
        if auth and not (username and password):
            try:
                decoded = _b64decode(auth).decode("utf-8")
            except (ValueError, UnicodeDecodeError) as e:
                raise InvalidArgument(f"invalid auth configuration: bad auth field: {e}") from e
            user, sep, secret = decoded.partition(":")
            if not sep:
                raise InvalidArgument("invalid auth configuration: auth field is not user:password")
            username = username or user
            password = password or secret
        return cls(
            username=username,
            password=password,
            identity_token=text("identitytoken"),
            registry_token=text("registrytoken"),
            server_address=text("serveraddress"),
        )

    @classmethod
    def from_header(cls, value: str | None) -> "Credentials | None":
        """Decode ``X-Registry-Auth``; None when the header carries no credentials.

        Docker sends base64url without padding; older clients send standard
        base64, some send the JSON itself, and many send ``{}`` (encoded or
        not) or an empty header when they have nothing: all are accepted.

        :raises InvalidArgument: for a header that is neither (Docker answers 400 too).
        """
        if value is None:
            return None
        value = value.strip()
        if not value:
            return None
        if value.startswith("{"):
            raw = value.encode("utf-8")
        else:
            try:
                raw = _b64decode(value)
            except ValueError as e:
                raise InvalidArgument(f"invalid X-Registry-Auth header: {e}") from e
        try:
            data = json.loads(raw) if raw.strip() else {}
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidArgument(f"invalid X-Registry-Auth header: {e}") from e
        if data is None:
            return None
        if not isinstance(data, dict):
            raise InvalidArgument("invalid X-Registry-Auth header: not a JSON object")
        if data and not (_DOCKER_KEYS & {str(k).lower() for k in data}):
            # Podman's multi-registry form ({"host": {...}}) has no single answer here.
            return None
        creds = cls.from_json(data)
        return None if creds.empty else creds

    def basic_authorization(self) -> str:
        """The ``Authorization`` value for HTTP basic auth."""
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


def registry_config(value: str | None) -> dict[str, Credentials]:
    """Decode ``X-Registry-Config`` (a build's credentials): ``{registry: AuthConfig}``,
    base64 JSON as the docker CLI and podman send it (or the JSON itself).

    :raises InvalidArgument: a header that is not such a map.
    """
    if value is None or not value.strip():
        return {}
    value = value.strip()
    try:
        raw = value.encode("utf-8") if value.startswith("{") else _b64decode(value)
        data = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"invalid X-Registry-Config header: {e}") from e
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InvalidArgument("invalid X-Registry-Config header: not a map of registries")
    found = {str(k): Credentials.from_json(v) for k, v in data.items()}
    return {k: c for k, c in found.items() if not c.empty}


def _b64decode(value: str) -> bytes:
    """Decode base64url or standard base64, with or without padding."""
    value = value.strip()
    padded = value + "=" * (-len(value) % 4)
    try:
        if "-" in value or "_" in value:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except binascii.Error as e:
        raise ValueError(f"not base64: {e}") from e


@frozen
class Challenge:
    """One ``WWW-Authenticate`` challenge.

    :ivar scheme: lower-cased (``bearer``, ``basic``).
    :ivar params: parameters with lower-cased names (``realm``, ``service``, ``scope``).
    """

    scheme: str
    params: Mapping[str, str] = field(factory=dict, hash=False)


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_PARAM = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*=[ \t]*")
_SPACE = re.compile(r"[ \t,]*")
_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_END = re.compile(r"[ \t]*(?:,|$)")


def parse_challenges(values: Sequence[bytes | str]) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` header values (RFC 7235 section 4.1).

    One header may hold several challenges separated by commas; parameters are
    ``name=token`` or ``name="quoted string"``.  Malformed trailing text is
    ignored rather than rejected: a registry's odd header should not hide the
    challenges we understand.
    """
    challenges: list[Challenge] = []
    for raw in values:
        text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
        pos = 0
        while True:
            pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
            scheme = _TOKEN.match(text, pos)
            if scheme is None:
                break
            pos = scheme.end()
            params: dict[str, str] = {}
            start = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
            token68 = _TOKEN68.match(text, start)
            if token68 and _END.match(text, token68.end()):
                # The token68 form ("Negotiate abc=="): no parameters to keep.
                pos = token68.end()
                challenges.append(Challenge(scheme.group(0).lower()))
                continue
            while True:
                start = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
                param = _PARAM.match(text, start)
                if param is None:
                    break
                value, pos = _param_value(text, param.end())
                params[param.group(1).lower()] = value
            challenges.append(Challenge(scheme.group(0).lower(), params))
    return challenges


def _param_value(text: str, pos: int) -> tuple[str, int]:
    """A token or quoted-string starting at ``pos``; return it and the position after it."""
    if pos < len(text) and text[pos] == '"':
        out = []
        pos += 1
        while pos < len(text) and text[pos] != '"':
            if text[pos] == "\\" and pos + 1 < len(text):
                pos += 1
            out.append(text[pos])
            pos += 1
        return "".join(out), pos + 1
    token = _TOKEN.match(text, pos)
    if token is None:
        return "", pos
    return token.group(0), token.end()


#: A cache key: (realm, service, scopes, credentials).
TokenKey = tuple[str, str, tuple[str, ...], Credentials | None]


class TokenCache:
    """Bearer tokens by realm, service, scope and credentials, until they expire."""

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._tokens: dict[TokenKey, tuple[str, float]] = {}

    def get(self, key: TokenKey) -> str | None:
        """A still valid token for ``key``, or None."""
        entry = self._tokens.get(key)
        if entry is None:
            return None
        token, expires = entry
        if self._clock.seconds() >= expires:
            del self._tokens[key]
            return None
        return token

    def put(self, key: TokenKey, token: str, expires_in: object = None) -> None:
        """Remember ``token`` for ``expires_in`` seconds (minus a safety margin)."""
        lifetime = DEFAULT_TOKEN_LIFETIME
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            lifetime = max(int(expires_in), DEFAULT_TOKEN_LIFETIME)
        self._tokens[key] = (token, self._clock.seconds() + lifetime - TOKEN_MARGIN)

    def discard(self, key: TokenKey) -> None:
        """Forget ``key``'s token (the registry refused it)."""
        self._tokens.pop(key, None)


def token_from_response(data: object) -> tuple[str, object]:
    """``(token, expires_in)`` from a token server's JSON answer.

    Docker's token server answers ``token``, OAuth2 servers ``access_token``;
    the spec says to accept either.

    :raises ValueError: when there is no token.
    """
    fields = data if isinstance(data, dict) else {}
    token = fields.get("token") or fields.get("access_token")
    if not isinstance(token, str) or not token:
        raise ValueError("token response has no token")
    return token, fields.get("expires_in")
