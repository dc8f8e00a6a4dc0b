"""Clear errors for unknown names, with the nearest valid one suggested."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def nearest(name: str, valid: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return matches[0] if matches else None


def unknown_name_error(kind: str, name: str, valid: Iterable[str]) -> KeyError:
    """A KeyError that names the bad value, suggests the closest valid one and lists them all."""
    valid = sorted(valid)
    guess = nearest(name, valid)
    hint = f" Did you mean {guess!r}?" if guess else ""
    return UnknownNameError(f"unknown {kind} {name!r}.{hint} Valid: {', '.join(valid)}")


class UnknownNameError(KeyError):
    """KeyError whose message prints without the quotes KeyError adds."""

    def __str__(self) -> str:
        return str(self.args[0])
