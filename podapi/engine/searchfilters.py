"""The ``filters`` of an image search: ``stars``, ``is-official``, ``is-automated``.

Parsed as Podman's search handler (``pkg/api/handlers/compat/images_search.go``)
hands them to containers/common's ``libimage.ParseSearchFilter``: only the
first value of each key counts (``key=values[0]``); ``stars`` must be a
(Go ``strconv.Atoi``) integer; ``is-official``/``is-automated`` mean false only
for the exact text ``false`` and true for anything else; any other key is an
error.  Podman answers those errors with a 500; they are bad input, so we
answer 400 with the same words.
"""

import re
from collections.abc import Mapping, Sequence

from attrs import frozen

from podapi.errors import InvalidArgument

STARS = "stars"
OFFICIAL = "is-official"
AUTOMATED = "is-automated"
_GO_INT = re.compile(r"^[+-]?[0-9]+$")


@frozen
class SearchFilter:
    """What a search result must be to be listed.

    :ivar stars: the least number of stars.
    :ivar official: official images only (True), non-official only (False), or either (None).
    :ivar automated: the same for automated builds.
    """

    stars: int = 0
    official: bool | None = None
    automated: bool | None = None

    def matches(self, stars: int, official: bool, automated: bool) -> bool:
        """Whether a result with these properties passes (libimage's ``matches*Filter``)."""
        return (
            stars >= self.stars
            and (self.official is None or official == self.official)
            and (self.automated is None or automated == self.automated)
        )


def parse(filters: Mapping[str, Sequence[str]]) -> SearchFilter:
    """A :class:`SearchFilter` from the decoded ``filters`` query parameter.

    :raises InvalidArgument: an unknown key or a ``stars`` value that is not an integer.
    """
    stars, official, automated = 0, None, None
    for key, values in filters.items():
        value = values[0] if values else ""
        if key == STARS:
            if not _GO_INT.match(value):
                raise InvalidArgument(
                    "incorrect value type for stars filter: strconv.Atoi: parsing "
                    f'"{value}": invalid syntax'
                )
            stars = int(value)
        elif key == OFFICIAL:
            official = value != "false"
        elif key == AUTOMATED:
            automated = value != "false"
        else:
            raise InvalidArgument(f'invalid filter type "{key}={value}"')
    return SearchFilter(stars, official, automated)
