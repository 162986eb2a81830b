"""Fires per second through `qaflow serve` (HTTP) beside the same fires through the Python API, on each store.

For each store the in-process figure is ``Engine.fire`` called in a loop on that store (the call and its
database time); the HTTP figures are ``POST /instances/{id}/triggers/next`` against a `qaflow serve`
process on the same kind of store, sent by one client over one keep-alive connection (each request
waits for the last) and by several client threads at once. Requests authenticate with an API key, and
again with an RS256 bearer token (verified against a JWKS on every request). The clients are the
standard library's http.client, which costs little; one row repeats the API-key run with httpx to show
what a heavier client adds. The ratio is HTTP time per fire over in-process time per fire. Target: HTTP
fire on PostgreSQL within 3x the in-process call. Client, server and database share this machine's
CPUs. Prints figures; asserts nothing.

    python benchmarks/http_throughput.py [--instances N] [--clients C]

PostgreSQL is measured when $QAFLOW_TEST_PG holds a postgresql:// URL (tests/store/start_postgres.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).parent
CONFIG = HERE / "config"
STEPS = 8  # the nine-state workflow takes eight "next" fires from start to end
ISSUER, AUDIENCE = "https://login.example.test/bench/v2.0", "api://qaflow-bench"


def seed(target: str, n: int, tag: str) -> list[str]:
    """``n`` nine-state instances, started straight into the store."""
    from engine import Engine, load_config
    from engine.store.open import open_store

    store = open_store(target)
    engine = Engine(load_config(CONFIG), store=store)
    ids = [engine.start("nine_state", {"case_id": f"{tag}-{i}", "lead_auditor": "TM-01"}, actor="QA", roles=["qa_team"],
                        at="2026-10-01T09:00").id for i in range(n)]
    close = getattr(store, "close", None)
    if close is not None:
        close()
    return ids


def in_process(target: str, n: int, tag: str) -> float:
    """Fires per second through Engine.fire, at the wall clock's time, as the server calls it."""
    from engine import Engine, SystemClock, load_config
    from engine.store.open import open_store

    ids = seed(target, n, tag)
    store = open_store(target)
    engine = Engine(load_config(CONFIG), store=store, clock=SystemClock())
    t0 = time.perf_counter()
    for _ in range(STEPS):
        for iid in ids:
            engine.fire(iid, "next", actor="QA", roles=["qa_team"])
    elapsed = time.perf_counter() - t0
    assert engine.get(ids[-1]).state == "closed"
    close = getattr(store, "close", None)
    if close is not None:
        close()
    return n * STEPS / elapsed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(target: str, settings: Path, workdir: Path) -> Iterator[str]:
    import httpx

    port = free_port()
    log = workdir / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "engine", "--config", str(CONFIG), "serve", "--db", target, "--port", str(port),
                                 "--server-config", str(settings), "--advance-every", "0", "--no-access-log", "--log-level", "warning"],
                                stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"qaflow serve did not start:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(15)


def http_fires(url: str, ids: list[str], headers: dict[str, str], clients: int, library: str = "http.client") -> float:
    """Fires per second over HTTP: ``clients`` threads, each with its own connection and its own instances."""
    import http.client

    import httpx

    shares = [ids[k::clients] for k in range(clients)]
    barrier = threading.Barrier(clients + 1)
    errors: list[str] = []
    host, port = url.removeprefix("http://").split(":")

    def work(mine: list[str]) -> None:
        if library == "httpx":
            with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
                client.get("/health")  # open the connection before the clock starts
                barrier.wait()
                for _ in range(STEPS):
                    for iid in mine:
                        response = client.post(f"/instances/{iid}/triggers/next")
                        if response.status_code != 200:
                            errors.append(response.text)
                            return
            return
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        conn.request("GET", "/health")
        conn.getresponse().read()
        barrier.wait()
        for _ in range(STEPS):
            for iid in mine:
                conn.request("POST", f"/instances/{iid}/triggers/next", headers=headers)
                answer = conn.getresponse()
                body = answer.read()
                if answer.status != 200:
                    errors.append(body.decode())
                    return
        conn.close()

    threads = [threading.Thread(target=work, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    barrier.wait()
    t0 = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(errors[0])
    return len(ids) * STEPS / elapsed


def credentials(workdir: Path) -> tuple[Path, dict[str, str], Callable[[], dict[str, str]]]:
    """A settings file with an API key and an OIDC issuer whose JWKS is a file; headers for each."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    from engine.server.settings import new_api_key

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = workdir / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": "k1", "alg": "RS256"}]}))
    api_key, digest = new_api_key()
    settings = workdir / "server.toml"
    settings.write_text(f'[oidc]\nissuer = "{ISSUER}"\naudience = "{AUDIENCE}"\njwks_file = "{jwks}"\n[oidc.roles]\n"QA" = "qa_team"\n'
                        f'[[api_keys]]\nname = "bench"\nactor = "QA"\nroles = ["qa_team"]\nsha256 = "{digest}"\n')

    def bearer() -> dict[str, str]:
        now = int(time.time())
        token = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": now + 3600, "oid": "QA", "roles": ["QA"]}, key, algorithm="RS256",
                           headers={"kid": "k1"})
        return {"Authorization": f"Bearer {token}"}

    return settings, {"X-API-Key": api_key}, bearer


def measure(label: str, target: Callable[[str], str], n: int, clients: int, rounds: int, workdir: Path,
            settings: Path, key_headers: dict[str, str], bearer: Callable[[], dict[str, str]]) -> list[tuple[str, str, float, float]]:
    """Rows of (store, way, fires/s, ratio of time per fire to the in-process call's), best of ``rounds``.

    Each round measures every way once, one after the other, so that a busy moment of the machine
    hits all of them rather than one.
    """
    ways = [("in-process Engine.fire", None, 0, ""),
            ("HTTP, 1 client, API key", key_headers, 1, "http.client"), ("HTTP, 1 client, bearer JWT", None, 1, "http.client"),
            (f"HTTP, {clients} clients, API key", key_headers, clients, "http.client"),
            ("HTTP, 1 httpx client, API key", key_headers, 1, "httpx")]
    best = dict.fromkeys(range(len(ways)), 0.0)
    for r in range(rounds):
        for k, (_, headers, threads, library) in enumerate(ways):
            where = target(f"r{r}-w{k}")
            if not threads:
                best[k] = max(best[k], in_process(where, n, f"d{r}"))
                continue
            ids = seed(where, n, f"h{r}")
            with serving(where, settings, workdir) as url:
                best[k] = max(best[k], http_fires(url, ids, headers if headers is not None else bearer(), threads, library))
    return [(label, way, best[k], best[0] / best[k]) for k, (way, _, _, _) in enumerate(ways)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=150)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    rows: list[tuple[str, str, float, float]] = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("QAFLOW_BENCH_DIR")) as tmp:
        workdir = Path(tmp)
        settings, key_headers, bearer = credentials(workdir)
        rows += measure("sqlite", lambda name: str(workdir / f"{name}.db"), args.instances, args.clients, args.rounds, workdir,
                        settings, key_headers, bearer)
        url = os.environ.get("QAFLOW_TEST_PG")
        if url:
            import psycopg

            schemas: list[str] = []

            def pg_target(name: str) -> str:
                schema = f"bench_{uuid.uuid4().hex[:8]}"
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f'CREATE SCHEMA "{schema}"')
                schemas.append(schema)
                return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"

            try:
                rows += measure("postgresql", pg_target, args.instances, args.clients, args.rounds, workdir, settings, key_headers, bearer)
            finally:
                with psycopg.connect(url, autocommit=True) as conn:
                    for schema in schemas:
                        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        else:
            print("(PostgreSQL not measured: set QAFLOW_TEST_PG=postgresql://..., see tests/store/start_postgres.sh)")

    print(f"{args.instances} instances x {STEPS} fires; best of {args.rounds} rounds; {os.cpu_count()} CPUs "
          "(client, server and database share them)")
    print(f"{'store':<12}{'how':<32}{'fires/s':>10}{'ms/fire':>10}{'x in-process':>14}")
    for store, way, rate, ratio in rows:
        print(f"{store:<12}{way:<32}{rate:>10.0f}{1000 / rate:>10.2f}{ratio:>14.2f}")


if __name__ == "__main__":
    main()
