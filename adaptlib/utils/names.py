"""Clear errors for unknown names and option keys, with the nearest valid one suggested."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def nearest(name: str, valid: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return matches[0] if matches else None


def unknown_name_message(what: str, name: object, valid: Iterable[str]) -> str:
    """``"{what} 'nmae'. Did you mean 'name'? Valid: a, b, name"`` (the hint only when a valid name is close)."""
    valid = sorted(valid)
    guess = nearest(str(name), valid)
    hint = f" Did you mean {guess!r}?" if guess else ""
    return f"{what} {name!r}.{hint} Valid: {', '.join(valid)}"


def unknown_name_error(kind: str, name: str, valid: Iterable[str]) -> KeyError:
    """A KeyError that names the bad value, suggests the closest valid one and lists them all."""
    return UnknownNameError(unknown_name_message(f"unknown {kind}", name, valid))


def unknown_keys_error(what: str, unknown: Iterable[str], known: Iterable[str]) -> ValueError:
    """A ValueError for option keys ``what`` does not have, each with the closest known key when there is one:
    ``"part 'clip_adapter' has no option 'raito' (did you mean 'ratio'?); its options are ['ratio', ...]"``."""
    known = sorted(known)
    hints = []
    for key in sorted(unknown):
        guess = nearest(key, known)
        hints.append(f"{key!r} (did you mean {guess!r}?)" if guess else repr(key))
    return ValueError(f"{what} has no option {', '.join(hints)}; its options are {known}")


class UnknownNameError(KeyError):
    """KeyError whose message prints without the quotes KeyError adds."""

    def __str__(self) -> str:
        return str(self.args[0])
