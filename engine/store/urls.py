"""A store target as it may be shown in messages: a URL without its password."""

from __future__ import annotations


def shown(target: str) -> str:
    """The target without a password, if the URL has one."""
    from urllib.parse import urlsplit, urlunsplit

    if "://" not in target:
        return target
    parts = urlsplit(target)
    if parts.password is None:
        return target
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
