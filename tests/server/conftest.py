"""Fixtures for the HTTP tests: keys, tokens, an API key, and a running server per test (server_harness.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_harness import Api, Keys, ThreadServer, Tokens, jwk_of, make_api, new_rsa_key

from engine.server.settings import new_api_key


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    good, other = new_rsa_key(), new_rsa_key()
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk_of(good, "k1")]}))
    return Keys(good, other, path)


@pytest.fixture(scope="session")
def tokens(keys: Keys) -> Tokens:
    return Tokens(keys)


@pytest.fixture(scope="session")
def api_key() -> tuple[str, str]:
    """A service account's key and its sha256 (the settings hold only the hash)."""
    return new_api_key()


@pytest.fixture
def api(tmp_path: Path, keys: Keys, tokens: Tokens, api_key: tuple[str, str]) -> Iterator[Api]:
    """A server on the basic fixture's configuration and a SQLite store, on a clock the test sets."""
    live, app = make_api(tmp_path, keys, tokens, api_key, server={"advance_every_seconds": 0})
    with ThreadServer(app) as server:
        live.url = server.url
        yield live
    live.engine.store.close()  # type: ignore[attr-defined]  # the SQLite store has close(); the Store protocol does not
