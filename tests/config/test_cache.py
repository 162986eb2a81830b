"""The configuration cache: keyed by every byte read, the same results as a load without it, never an error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine.config import cache as entries
from engine.config import loader
from engine.config.loader import LazyWorkflows, check_config, load_config
from engine.config.validate import validate_paths
from engine.scenarios import load_scenarios, run_scenarios

TESTS = Path(__file__).resolve().parents[1]
BUNDLED = TESTS.parent / "config"
BASIC = TESTS / "fixtures" / "basic"


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """An empty cache folder of the test's own."""
    where = tmp_path / "cache"
    monkeypatch.setenv("QAFLOW_CACHE_DIR", str(where))
    monkeypatch.delenv("QAFLOW_CACHE", raising=False)
    return where


@pytest.fixture
def config(tmp_path):
    """A copy of the bundled configuration, to edit."""
    return Path(shutil.copytree(BUNDLED, tmp_path / "config"))


def names(where: Path, kind: str) -> list[str]:
    return sorted(p.name for p in where.glob(f"{kind}-*.json")) if where.is_dir() else []


def no_full_check(monkeypatch):
    """Make a full check fail the test: what follows must come from the cache."""

    def refuse(*args, **kwargs):
        raise AssertionError("checked again: the cache was not used")

    monkeypatch.setattr(loader, "_check", refuse)


def shape(definitions):
    """Everything a Definitions says, as text (compiled expressions compare by identity, their reprs by source)."""
    return {
        "root": definitions.root,
        "workflows": [(wid, repr(wf), wf.version, wf.digest, wf.source, wf.file) for wid, wf in definitions.workflows.items()],
        "calendars": dict(definitions.calendars),
        "scales": dict(definitions.scales),
        "tables": dict(definitions.tables),
        "alert_groups": dict(definitions.alert_groups),
        "extra": dict(definitions.extra),
        "timescales": dict(definitions.timescales),
        "functions": sorted(definitions.functions),
    }


# --------------------------------------------------------------------------- the same results


def test_a_cached_load_gives_what_an_uncached_one_gives(folder, monkeypatch):
    plain, plain_problems = check_config(BUNDLED)
    first, first_problems = check_config(BUNDLED, cache=True)  # fills the cache
    assert names(folder, "config") and names(folder, "holidays")
    no_full_check(monkeypatch)
    cached, cached_problems = check_config(BUNDLED, cache=True)
    assert isinstance(cached.workflows, LazyWorkflows)
    assert list(cached.workflows) == list(plain.workflows)
    assert not cached.workflows._made  # nothing compiled until asked for
    assert shape(cached) == shape(plain) == shape(first)
    assert cached_problems == plain_problems == first_problems
    for wid, wf in cached.workflows.items():
        assert (wf.version, wf.digest) == (plain.workflows[wid].version, plain.workflows[wid].digest)
        assert wf.machine is not None


def test_the_bundled_scenarios_pass_on_a_cached_load(folder, monkeypatch):
    load_config(BUNDLED, cache=True)
    no_full_check(monkeypatch)
    definitions = load_config(BUNDLED, cache=True)
    assert isinstance(definitions.workflows, LazyWorkflows)
    scenarios, problems = load_scenarios(BUNDLED)
    assert scenarios and not [p for p in problems if p.severity == "error"]
    results = run_scenarios(scenarios, definitions)
    assert [str(f) for r in results for f in r.failures] == []


def test_deadlines_on_a_cached_load_need_no_holidays_package(folder):
    code = (
        "import sys, datetime as dt\n"
        "from engine.config.loader import load_config\n"
        f"d = load_config({str(BUNDLED)!r}, cache=True)\n"
        "cal = d.calendars['england']\n"
        "print(cal.add_working_days(dt.date(2026, 12, 24), 1), 'holidays' in sys.modules)\n"
    )
    env = {**os.environ, "QAFLOW_CACHE_DIR": str(folder)}
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    # Christmas Day, Boxing Day (Saturday), the weekend and Boxing Day (observed) on Mon 28 Dec are skipped
    assert first.stdout.split()[0] == second.stdout.split()[0] == "2026-12-29"
    assert second.stdout.split()[1] == "False"


def test_warnings_come_back_from_the_cache(folder, monkeypatch):
    _, expected = check_config(BASIC)
    assert [p.code for p in expected] == ["open-start"]
    check_config(BASIC, cache=True)
    no_full_check(monkeypatch)
    assert check_config(BASIC, cache=True)[1] == expected


def test_validate_reports_the_same_problems_from_the_cache(folder, monkeypatch):
    plain = validate_paths([BASIC])
    cold = validate_paths([BASIC], cache=True)
    assert names(folder, "validate")

    def refuse(*args, **kwargs):
        raise AssertionError("validated again: the cache was not used")

    monkeypatch.setattr("engine.config.validate._validate", refuse)
    assert validate_paths([BASIC], cache=True) == cold == plain
    assert [p.code for p in cold] == ["open-start", "unused-trigger"]


def test_a_configuration_with_errors_is_never_cached(folder, config):
    workflow = config / "workflows" / "complaint.yaml"
    workflow.write_text(workflow.read_text().replace("initial: true", "initial: maybe", 1))
    first = validate_paths([config], cache=True)
    assert [p for p in first if p.severity == "error"]
    assert validate_paths([config], cache=True) == first  # every problem, every time, with its position
    definitions, problems = check_config(config, cache=True)
    assert definitions is None and [p for p in problems if p.severity == "error"]
    assert names(folder, "config") == names(folder, "validate") == []


def test_a_workflow_is_compiled_from_the_bytes_that_were_hashed(folder, config):
    check_config(config, cache=True)
    definitions, _ = check_config(config, cache=True)
    assert isinstance(definitions.workflows, LazyWorkflows)
    workflow = config / "workflows" / "complaint.yaml"
    before = workflow.read_text()
    workflow.write_text(before.replace("version: ", "version: 9", 1))  # edited after the load
    assert definitions.workflows["complaint"].source == before


def test_workflows_are_named_as_the_working_directory_had_them_when_loaded(folder, monkeypatch, tmp_path):
    monkeypatch.chdir(TESTS)
    plain, _ = check_config(BASIC)
    check_config(BASIC, cache=True)
    cached, _ = check_config(BASIC, cache=True)
    assert isinstance(cached.workflows, LazyWorkflows)
    monkeypatch.chdir(tmp_path)
    assert cached.workflows["review"].file == plain.workflows["review"].file == "fixtures/basic/workflows/review.yaml"


def test_threads_share_one_compile():
    calls = []

    def make():
        calls.append(1)
        return object()

    workflows = LazyWorkflows({"a": make})
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(workflows["a"])) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len({id(s) for s in seen}) == 1
    assert "a" in workflows and "b" not in workflows and workflows.get("b") is None and len(workflows) == 1


# --------------------------------------------------------------------------- the key


def key(root: Path) -> str:
    snap = loader._snapshot(root)
    assert snap is not None
    return snap.key


def test_one_byte_changes_the_key(folder, config):
    first = key(config)
    assert key(config) == first
    rules = next((config / "rules").glob("*.yaml"))
    rules.write_bytes(rules.read_bytes() + b" ")
    second = key(config)
    assert second != first
    workflow = config / "workflows" / "complaint.yaml"
    workflow.write_bytes(workflow.read_bytes().replace(b"title:", b"title: ", 1))
    assert key(config) not in (first, second)


def test_a_file_added_or_removed_changes_the_key(folder, config):
    first = key(config)
    extra = config / "workflows" / "zz_copy.yaml"
    shutil.copy(config / "workflows" / "complaint.yaml", extra)
    added = key(config)
    extra.unlink()
    assert key(config) == first
    (config / "workflows" / "moderation.yaml").unlink()
    assert len({first, added, key(config)}) == 3


def test_files_that_the_load_does_not_read_leave_its_key_alone(folder, config):
    first = key(config)
    (config / "workflows" / "notes.txt").write_text("not configuration")
    scenario = next((config / "scenarios").glob("*.yaml"))
    scenario.write_text(scenario.read_text() + "\n# a comment\n")
    assert key(config) == first


def test_the_working_directory_is_in_the_key(folder, config, monkeypatch):
    """Problems name files relative to it."""
    first = key(config)
    monkeypatch.chdir(config)
    assert key(config) != first


def test_an_edit_is_a_miss_then_a_hit(folder, config, monkeypatch):
    check_config(config, cache=True)
    workflow = config / "workflows" / "complaint.yaml"
    workflow.write_text(workflow.read_text() + "\n# reviewed\n")
    definitions, _ = check_config(config, cache=True)  # a new key: checked, written
    assert not isinstance(definitions.workflows, LazyWorkflows)
    assert len(names(folder, "config")) == 2
    no_full_check(monkeypatch)
    assert isinstance(check_config(config, cache=True)[0].workflows, LazyWorkflows)


# --------------------------------------------------------------------------- never an error


def test_a_corrupt_entry_is_ignored_and_written_again(folder, monkeypatch):
    check_config(BASIC, cache=True)
    (entry,) = folder.glob("config-*.json")
    good = entry.read_bytes()
    for bad in (b"", b"{", good[: len(good) // 2], b"[]", b'{"format": 1}', b"\xff\xfe",
                json.dumps({**json.loads(good), "format": 0}).encode(),
                json.dumps({**json.loads(good), "payload": {"problems": "nope", "workflows": []}}).encode(),
                json.dumps({**json.loads(good), "payload": {"problems": [], "workflows": [["review", "/nowhere.yaml"]]}}).encode(),
                json.dumps({**json.loads(good), "payload": {**json.loads(good)["payload"], "workflows": [
                    json.loads(good)["payload"]["workflows"][0]]}}).encode()):  # a workflow left out
        entry.write_bytes(bad)
        definitions, problems = check_config(BASIC, cache=True)
        assert definitions is not None and [p.code for p in problems] == ["open-start"]
        assert entry.read_bytes() == good  # written anew


def test_an_entry_claiming_errors_or_from_another_key_is_ignored(folder):
    check_config(BASIC, cache=True)
    (entry,) = folder.glob("config-*.json")
    data = json.loads(entry.read_text())
    data["payload"]["problems"][0]["severity"] = "error"
    entry.write_text(json.dumps(data))
    assert check_config(BASIC, cache=True)[0] is not None
    data = json.loads(entry.read_text())
    data["key"] = "0" * 64
    entry.write_text(json.dumps(data))
    assert entries.load("config", entry.name[len("config-"):-len(".json")]) is None


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="no file owners to check")
def test_an_entry_others_may_write_is_not_read(folder):
    check_config(BASIC, cache=True)
    (entry,) = folder.glob("config-*.json")
    key_ = entry.name[len("config-"):-len(".json")]
    assert entries.load("config", key_) is not None
    entry.chmod(0o666)
    assert entries.load("config", key_) is None
    entry.chmod(0o600)
    folder.chmod(0o777)
    assert entries.load("config", key_) is None
    assert entries.store("config", key_, {"problems": []}) is False
    folder.chmod(0o700)


def test_a_symlinked_entry_is_not_followed(folder, tmp_path):
    entries.store("test", "k", {"v": 1})
    planted = tmp_path / "planted.json"
    planted.write_text(json.dumps({"format": entries.FORMAT, "kind": "test", "key": "k2", "payload": {"v": 2}}))
    (folder / "test-k2.json").symlink_to(planted)
    assert entries.load("test", "k") == {"v": 1}
    assert entries.load("test", "k2") is None


def test_a_folder_that_cannot_be_made_is_no_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("QAFLOW_CACHE_DIR", str(blocker / "cache"))
    definitions, problems = check_config(BASIC, cache=True)
    assert definitions is not None and [p.code for p in problems] == ["open-start"]


@pytest.mark.parametrize("value", ["0", "off", "no", "false", "OFF"])
def test_qaflow_cache_0_turns_it_off(folder, monkeypatch, value):
    monkeypatch.setenv("QAFLOW_CACHE", value)
    assert entries.cache_dir() is None
    check_config(BASIC, cache=True)
    assert validate_paths([BASIC], cache=True)
    assert not folder.exists()


def test_where_the_cache_lives(monkeypatch, tmp_path):
    monkeypatch.delenv("QAFLOW_CACHE", raising=False)
    monkeypatch.delenv("QAFLOW_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert entries.cache_dir() == tmp_path / "qaflow"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert entries.cache_dir() == tmp_path / "home" / ".cache" / "qaflow"
    monkeypatch.setenv("QAFLOW_CACHE_DIR", str(tmp_path / "mine"))
    assert entries.cache_dir() == tmp_path / "mine"


def test_only_the_entries_used_last_are_kept(folder, monkeypatch):
    for i in range(5):
        assert entries.store("test", f"k{i}", {"i": i})
        os.utime(folder / f"test-k{i}.json", (1_000_000 + i, 1_000_000 + i))
    monkeypatch.setattr(entries, "KEEP", 3)
    entries.load("test", "k0")  # used again: kept
    entries.store("test", "k5", {"i": 5})
    assert names(folder, "test") == ["test-k0.json", "test-k4.json", "test-k5.json"]


def test_concurrent_writers_and_readers_see_whole_entries_or_none(folder):
    """Two processes write the same entries over and over while reading them back: never half an entry."""
    code = (
        "import sys\n"
        "from engine.config import cache\n"
        "payload = {'filler': 'x' * 200_000, 'writer': sys.argv[1]}\n"
        "for i in range(60):\n"
        "    key = str(i % 3)\n"
        "    cache.store('race', key, payload)\n"
        "    got = cache.load('race', key)\n"
        "    assert got is None or (len(got['filler']) == 200_000 and got['writer'] in ('a', 'b')), got\n"
    )
    env = {**os.environ, "QAFLOW_CACHE_DIR": str(folder)}
    procs = [subprocess.Popen([sys.executable, "-c", code, who], env=env, stderr=subprocess.PIPE, text=True) for who in "ab"]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert names(folder, "race") == ["race-0.json", "race-1.json", "race-2.json"]
    assert not list(folder.glob(".tmp-*"))


def test_two_processes_loading_a_new_configuration_at_once(folder):
    code = (
        "from engine.config.loader import check_config\n"
        f"d, p = check_config({str(BASIC)!r}, cache=True)\n"
        "assert d is not None and [x.code for x in p] == ['open-start'], p\n"
        "print(sorted(d.workflows))\n"
    )
    env = {**os.environ, "QAFLOW_CACHE_DIR": str(folder)}
    for _ in range(3):
        procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            assert out.strip() == "['check', 'review']"
    assert len(names(folder, "config")) == 1
