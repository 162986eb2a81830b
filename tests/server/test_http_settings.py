"""The server's settings and `qaflow serve`'s refusals: every problem reported at once, nothing served open by
default, no algorithm or role that would let a token forge its way in."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from server_harness import AUDIENCE, ISSUER, write_settings

from engine.cli import main
from engine.server.errors import SettingsError
from engine.server.settings import find_api_key, hash_api_key, load_settings


def problems_of(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(SettingsError) as info:
        load_settings(path, environ=environ or {})
    return info.value.problems


def test_a_full_settings_file_reads(tmp_path, keys, api_key):
    path = write_settings(tmp_path / "s.toml", jwks_file=keys.jwks_file,
                          api_keys=[{"name": "case-system", "actor": "svc", "roles": ["qa_team"], "sha256": api_key[1]}],
                          access={"report": ["qa_team", "head_of_service"], "read": ["*"]},
                          webhook={"url": "https://host.example/alerts", "backoff_seconds": 1},
                          oidc={"actor_claim": "preferred_username", "leeway_seconds": 30})
    settings = load_settings(path, environ={"QAFLOW_WEBHOOK_SECRET": "whsec_" + "QUJD" * 11})
    assert settings.oidc is not None
    assert (settings.oidc.issuer, settings.oidc.audience, settings.oidc.actor_claim) == (ISSUER, (AUDIENCE,), "preferred_username")
    assert settings.oidc.role_map["Lead"] == ("manager", "qa_team")
    assert settings.access == {"report": frozenset({"qa_team", "head_of_service"})}  # "*": anyone, so not listed
    assert settings.webhook is not None and settings.webhook.secret == b"ABC" * 11
    assert find_api_key(settings.api_keys, api_key[0]).actor == "svc"  # type: ignore[union-attr]
    assert find_api_key(settings.api_keys, api_key[0] + "x") is None
    assert hash_api_key(api_key[0]).hex() == api_key[1]


def test_yaml_works_as_well_as_toml(tmp_path, keys):
    path = tmp_path / "server.yaml"
    path.write_text(f"oidc:\n  issuer: {ISSUER}\n  audience: {AUDIENCE}\n  jwks_file: {keys.jwks_file}\n  roles: {{QA.Team: qa_team}}\n")
    settings = load_settings(path, environ={})
    assert settings.oidc is not None and settings.oidc.role_map == {"QA.Team": ("qa_team",)}


def test_the_environment_can_name_the_provider(keys):
    env = {"QAFLOW_OIDC_ISSUER": ISSUER, "QAFLOW_OIDC_AUDIENCE": f"{AUDIENCE}, 0000-client-id", "QAFLOW_OIDC_JWKS_FILE": str(keys.jwks_file),
           "QAFLOW_OIDC_ROLE_MAP": "QA.Team=qa_team, Lead=manager+qa_team", "QAFLOW_OIDC_ACTOR_CLAIM": "preferred_username"}
    settings = load_settings(None, environ=env)
    assert settings.oidc is not None
    assert settings.oidc.audience == (AUDIENCE, "0000-client-id")
    assert settings.oidc.role_map == {"QA.Team": ("qa_team",), "Lead": ("manager", "qa_team")}
    assert settings.oidc.actor_claim == "preferred_username"


def test_every_problem_is_reported_at_once(tmp_path, keys):
    path = tmp_path / "bad.toml"
    path.write_text(f"""
[oidc]
issuer = "{ISSUER}"
jwks_file = "{keys.jwks_file}"
jwks_url = "http://idp.example/keys"
algorithms = ["RS256", "none", "HS256"]
colour = "blue"
[oidc.roles]
"Admin" = ["system", "qa_team"]
"Bad" = "qa\\nteam"
[[api_keys]]
name = "a"
actor = "system"
sha256 = "abc"
key = "qfk_in-clear"
[access]
start = ["qa_team"]
[webhook]
url = "http://hooks.example/in"
[extras]
""")
    found = problems_of(path)
    for words in ["needs 'audience'", "one of 'jwks_url' (the provider's keys) or 'jwks_file'", "'jwks_url' must be https://",
                  "may not include 'none'", "may not include 'HS256': HS* algorithms use a shared secret",
                  "unknown key 'colour'", "roles.Admin names the role 'system'", "the actor 'system' is reserved for the engine",
                  "roles.Bad: a role 'qa\\nteam' contains a control character",
                  "'sha256' must be 64 hex digits", "unknown key 'key'", "unknown operation 'start'",
                  "[webhook] 'url' must be https://", "needs a signing secret", "unknown section 'extras'"]:
        assert any(words in p for p in found), (words, found)


def test_nothing_to_authenticate_with_is_refused(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert problems_of(empty) == [
        "no way to authenticate callers: configure [oidc] or [[api_keys]] (or run `qaflow serve --insecure-dev` on your own machine)"]
    with pytest.raises(SettingsError, match="no way to authenticate"):
        load_settings(None, environ={})


def test_a_short_webhook_secret_is_refused(tmp_path, keys):
    path = write_settings(tmp_path / "s.toml", jwks_file=keys.jwks_file, webhook={"url": "https://h.example/x"})
    assert any("too short" in p for p in problems_of(path, {"QAFLOW_WEBHOOK_SECRET": "short"}))


# --------------------------------------------------------------------------- the commands


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, ["--color", "never", *args], env={"QAFLOW_SERVER_CONFIG": "", **(env or {})})


def test_serve_refuses_to_start_open(tmp_path):
    result = run("serve", "--db", str(tmp_path / "q.db"))
    assert result.exit_code == 2
    assert "no way to authenticate callers" in result.output and "--insecure-dev" in result.output


def test_insecure_dev_only_on_loopback(tmp_path):
    result = run("serve", "--insecure-dev", "--host", "0.0.0.0", "--db", str(tmp_path / "q.db"))
    assert result.exit_code == 2 and "only on a loopback address" in result.output


def test_serve_lists_the_settings_problems_and_exits_2(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[oidc]\nissuer = "x"\nalgorithms = ["none"]\n')
    result = run("serve", "--server-config", str(path))
    assert result.exit_code == 2
    assert f"{path}: [oidc] needs 'audience'" in result.output and f"{path}: [oidc] 'algorithms' may not include 'none'" in result.output


def test_serve_refuses_a_configuration_with_errors_printing_each(tmp_path, keys):
    settings = write_settings(tmp_path / "s.toml", jwks_file=keys.jwks_file)
    config = tmp_path / "config"
    (config / "workflows").mkdir(parents=True)
    (config / "workflows" / "w.yaml").write_text("workflow: w\nversion: 1\nstates:\n  a: {initial: true}\ntransitions:\n"
                                                 "  - {trigger: go, from: a, to: nowhere}\n")
    result = run("--config", str(config), "serve", "--server-config", str(settings), "--db", str(tmp_path / "q.db"))
    assert result.exit_code == 1
    assert "w.yaml:6:" in result.output and "nowhere" in result.output


def test_serve_without_the_servers_packages_says_how_to_get_them(monkeypatch, tmp_path):
    import engine.server.run as run_module

    monkeypatch.setattr(run_module, "NEEDED", {**run_module.NEEDED, "no_such_module_xyz": "uvicorn"})
    result = run("serve", "--insecure-dev", "--db", str(tmp_path / "q.db"))
    assert result.exit_code == 2
    assert "pip install 'qaflow[server]'" in result.output and "uvicorn missing" in result.output


def test_api_key_prints_the_key_once_and_the_entry_to_keep(tmp_path, keys):
    result = CliRunner().invoke(main, ["api-key", "--name", "case-system", "--actor", "svc-case", "--role", "qa_team"])
    assert result.exit_code == 0, result.output
    key = result.stderr.split()[-1]
    entry = tomllib.loads(result.stdout)["api_keys"][0]
    assert entry == {"name": "case-system", "actor": "svc-case", "roles": ["qa_team"], "sha256": hash_api_key(key).hex()}
    assert key.startswith("qfk_") and key not in result.stdout
    path = tmp_path / "s.toml"
    path.write_text(result.stdout)
    assert find_api_key(load_settings(path, environ={}).api_keys, key) is not None
    as_json = json.loads(CliRunner().invoke(main, ["api-key", "--name", "n", "--actor", "a", "--format", "json"]).stdout)
    assert hash_api_key(as_json["key"]).hex() == as_json["sha256"]
    refused = CliRunner().invoke(main, ["api-key", "--name", "n", "--actor", "a", "--role", "system"])
    assert refused.exit_code == 1 and "reserved" in refused.output


def test_webhook_secret_makes_a_secret_the_settings_take(tmp_path, keys):
    secret = CliRunner().invoke(main, ["webhook-secret"]).stdout.strip()
    assert secret.startswith("whsec_")
    path = write_settings(tmp_path / "s.toml", jwks_file=keys.jwks_file, webhook={"url": "https://h.example/x"})
    assert len(load_settings(path, environ={"QAFLOW_WEBHOOK_SECRET": secret}).webhook.secret) == 32  # type: ignore[union-attr]



def test_the_readmes_settings_example_loads():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## For HTTP hosts"):readme.index("## Trust boundaries")]
    blocks = [b.split("```", 1)[0] for b in section.split("```toml\n")[1:]]
    assert len(blocks) == 2  # the settings, and [webhook]
    settings = load_settings_text("\n".join(blocks), {"QAFLOW_WEBHOOK_SECRET": "whsec_" + "QUJD" * 11})
    assert settings.oidc is not None and settings.oidc.role_map["QA.Team"] == ("qa_team",)
    assert settings.webhook is not None and settings.api_keys[0].actor == "svc-case-system"


def load_settings_text(text: str, environ: dict[str, str]) -> Any:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "server.toml"
        path.write_text(text)
        return load_settings(path, environ=environ)


def test_the_outbox_is_closed_until_access_names_who_may_use_it(tmp_path, keys):
    closed = load_settings(write_settings(tmp_path / "a.toml", jwks_file=keys.jwks_file), environ={})
    assert closed.allowed_roles("outbox") == frozenset() and closed.allowed_roles("read") is None
    named = load_settings(write_settings(tmp_path / "b.toml", jwks_file=keys.jwks_file, access={"outbox": ["delivery"]}), environ={})
    assert named.allowed_roles("outbox") == frozenset({"delivery"})
    anyone = load_settings(write_settings(tmp_path / "c.toml", jwks_file=keys.jwks_file, access={"outbox": ["*"], "read": ["*"]}),
                           environ={})
    assert anyone.allowed_roles("outbox") is None and anyone.access == {"outbox": frozenset({"*"})}


def test_a_webhook_lease_must_outlast_its_attempts(tmp_path, keys):
    secret = {"QAFLOW_WEBHOOK_SECRET": "whsec_" + "QUJD" * 11}
    default = load_settings(write_settings(tmp_path / "a.toml", jwks_file=keys.jwks_file, webhook={"url": "https://h.example/x"}),
                            environ=secret)
    assert default.webhook is not None and default.webhook.lease_seconds == 60
    slow = load_settings(write_settings(tmp_path / "b.toml", jwks_file=keys.jwks_file,
                                        webhook={"url": "https://h.example/x", "timeout_seconds": 30}), environ=secret)
    assert slow.webhook is not None and slow.webhook.lease_seconds == 90  # three timeouts when that is longer than 60 s
    short = write_settings(tmp_path / "c.toml", jwks_file=keys.jwks_file,
                           webhook={"url": "https://h.example/x", "timeout_seconds": 10, "lease_seconds": 20})
    assert "[webhook] 'lease_seconds' must be a number of at least 30" in problems_of(short, secret)
