"""The HTTP tests' harness: uvicorn on a real loopback socket (in a thread, or `qaflow serve` in a
subprocess), RSA keys and a JWKS made here, tokens signed with PyJWT, settings files as operators write them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from engine import Engine, FixedClock, load_config
from engine.server import create_app, load_settings
from engine.store.sqlite import SQLiteStore

FIXTURE = Path(__file__).parent.parent / "fixtures" / "basic"
ISSUER = "https://login.example.test/tenant-1/v2.0"
AUDIENCE = "api://qaflow-test"
DAY0 = "2027-01-04T09:00"  # a Monday
ROLE_MAP = {"Manager": ["manager"], "QA.Team": ["qa_team"], "Lead": ["manager", "qa_team"]}


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk_of(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    public = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return {**public, "kid": kid, "use": "sig", "alg": "RS256"}


@dataclass
class Keys:
    good: rsa.RSAPrivateKey  # the issuer's key, published in the JWKS as k1
    other: rsa.RSAPrivateKey  # someone else's
    jwks_file: Path



class Tokens:
    """Signs tokens as the issuer would, or as an attacker would when told to."""

    def __init__(self, keys: Keys) -> None:
        self.keys = keys

    def __call__(self, actor: str | None = "R-01", roles: list[str] | None = None, *, lifetime: float = 300, not_before: float | None = None,
                 issuer: str = ISSUER, audience: str = AUDIENCE, key: Any = None, kid: str | None = "k1", alg: str = "RS256",
                 claims: dict[str, Any] | None = None) -> str:
        now = time.time()
        body: dict[str, Any] = {"iss": issuer, "aud": audience, "iat": int(now), "exp": int(now + lifetime), "sub": f"sub-{actor}"}
        if actor is not None:
            body["oid"] = actor
        if roles is not None:
            body["roles"] = roles
        if not_before is not None:
            body["nbf"] = int(now + not_before)
        body.update(claims or {})
        headers = {"kid": kid} if kid is not None else {}
        return jwt.encode(body, key if key is not None else self.keys.good, algorithm=alg, headers=headers)




def toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def write_settings(path: Path, *, jwks_file: Path | None = None, jwks_url: str | None = None, api_keys: Sequence[dict[str, Any]] = (),
                   access: dict[str, list[str]] | None = None, webhook: dict[str, Any] | None = None,
                   oidc: dict[str, Any] | None = None, server: dict[str, Any] | None = None) -> Path:
    """A TOML settings file, as an operator would write one."""
    lines = []
    if jwks_file is not None or jwks_url is not None:
        lines += ["[oidc]", f"issuer = {json.dumps(ISSUER)}", f"audience = {json.dumps(AUDIENCE)}"]
        lines.append(f"jwks_file = {json.dumps(str(jwks_file))}" if jwks_file else f"jwks_url = {json.dumps(jwks_url)}")
        for k, v in (oidc or {}).items():
            lines.append(f"{k} = {toml_value(v)}")
        lines.append("[oidc.roles]")
        lines += [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in ROLE_MAP.items()]
    for entry in api_keys:
        lines += ["[[api_keys]]", *(f"{k} = {toml_value(v)}" for k, v in entry.items())]
    for section, table in (("access", access), ("webhook", webhook), ("server", server)):
        if table:
            lines += [f"[{section}]", *(f"{k} = {toml_value(v)}" for k, v in table.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


def service_key_entry(api_key: tuple[str, str], roles: list[str] | None = None) -> dict[str, Any]:
    return {"name": "case-system", "actor": "svc-case", "roles": roles if roles is not None else ["manager"], "sha256": api_key[1]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThreadServer:
    """uvicorn serving an app on a real loopback socket, from a thread of this process."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


@dataclass
class Api:
    """A running server over an engine this test can also reach directly."""

    url: str
    engine: Engine
    clock: FixedClock
    tokens: Tokens
    api_key: str

    def client(self, token: str | None = None, *, key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if key is not None:
            headers["X-API-Key"] = key
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def as_(self, actor: str = "R-01", roles: list[str] | None = None) -> httpx.Client:
        return self.client(self.tokens(actor, roles))


def make_api(tmp_path: Path, keys: Keys, tokens: Tokens, api_key: tuple[str, str], *, config: Path = FIXTURE,
             **settings: Any) -> tuple[Api, Any]:
    path = write_settings(tmp_path / "server.toml", jwks_file=keys.jwks_file, api_keys=[service_key_entry(api_key)], **settings)
    clock = FixedClock(DAY0)
    engine = Engine(load_config(config), store=SQLiteStore(tmp_path / "qaflow.db"), clock=clock)
    app = create_app(engine, load_settings(path, environ={}), store_label="qaflow.db")
    return Api("", engine, clock, tokens, api_key[0]), app



# --------------------------------------------------------------------------- `qaflow serve` in a subprocess


class ServeProcess:
    """`python -m engine serve ...` on a free loopback port, its output in a log file."""

    def __init__(self, args: list[str], *, cwd: Path, env: dict[str, str] | None = None, config: Path = FIXTURE) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = cwd / f"serve-{self.port}.log"
        command = [sys.executable, "-m", "engine", "--config", str(config), "serve", "--port", str(self.port), "--no-access-log",
                   "--log-level", "warning", *args]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"qaflow serve exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"qaflow serve did not answer within 30 s:\n{self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
