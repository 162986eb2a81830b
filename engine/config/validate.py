"""``qaflow validate``: which checks apply to the folders and files given, run together, every problem sorted.

The checks themselves live elsewhere: YAML and schema (yamlsource, schemacheck), the compiled graph
(lint), scenarios, simulation models and report definitions. A file is checked with the rest of its
configuration, in a temporary copy when it does not sit in one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from ..problems import Location, Problem
from .lint import iter_scenario_problems, iter_tidiness_problems
from .loader import display_path

__all__ = ["validate_paths", "detect_kind"]

#: Folders of kinds qaflow reads itself elsewhere, besides those in ``loader.KINDS``.
_EXTRA_FOLDERS = {"programmes": "programme"}
_RULE_KEYS = ("calendars", "timescales", "scales", "tables", "alert_groups", "kpis", "indicator_rules", "selection", "grading")


def _folder_kinds() -> dict[str, str]:
    """Folder name -> kind, as configuration roots are laid out (loader.KINDS plus programmes)."""
    from .loader import KINDS

    return {**_EXTRA_FOLDERS, **{folder: kind for kind, (folder, _) in KINDS.items()}}


def detect_kind(path: Path, data: Any = None) -> str | None:
    """The kind of a single file: from its folder's name, else from its content."""
    kind = _folder_kinds().get(path.parent.name)
    if kind is not None:
        return kind
    if isinstance(data, Mapping):
        if "workflow" in data:
            return "workflow"
        if "scenarios" in data:
            return "scenario"
        if "programme" in data or "programmes" in data:
            return "programme"
        if any(key in data for key in _RULE_KEYS):
            return "rules"
    return None


def _schema_of(kind: str, vocabularies: Mapping[str, Any] | None = None) -> Any:
    """The JSON Schema of a kind (a bundled ``KIND.schema.json``) with the configuration's vocabularies, else None."""
    from .configschemas import config_schema, schema_kinds

    return config_schema(kind, vocabularies) if kind in schema_kinds() else None



def _is_root(path: Path) -> bool:
    return any((path / folder).is_dir() for folder in _folder_kinds())


def _guarded(where: str, work: Callable[[], list[Problem]]) -> list[Problem]:
    try:
        return work()
    except RecursionError:
        return [Problem(Location(where, 1, 1), "error", "too-deep", "the input is nested too deeply to check")]
    except Exception as exc:  # never a traceback: say what failed, as a problem
        return [Problem(Location(where, 1, 1), "error", "internal-error",
                        f"qaflow could not check this ({type(exc).__name__}: {exc}); please report it")]


def _schema_check_file(path: Path, kind: str, vocabularies: Mapping[str, Any] | None = None) -> list[Problem]:
    """YAML and schema problems of one file of a kind that has no deeper check here."""
    from .schemacheck import check_schema
    from .yamlsource import load_yaml_file

    doc, problems = load_yaml_file(path, display=display_path(path))
    if doc is None or any(p.severity == "error" for p in problems):
        return problems
    if doc.data is None:
        return [Problem(Location(doc.file, 1, 1), "error", "empty-file", "the file is empty")]
    schema = _schema_of(kind, vocabularies)
    found = check_schema(doc, schema) if schema is not None else []
    if kind == "programme" and not any(p.severity == "error" for p in found):
        from ..allocation import iter_programme_problems

        found += list(iter_programme_problems(doc))
    return problems + found


def _check_other_kinds(root: Path, definitions: Any) -> list[Problem]:
    """Simulation models and report definitions through their own checks (when the configuration
    loads), programmes and anything else by schema."""
    from ..errors import ConfigError
    from .loader import YAML_SUFFIXES, vocabularies_of

    problems: list[Problem] = []
    vocabularies = definitions.vocabularies if definitions is not None else vocabularies_of(root)
    for folder, kind in _folder_kinds().items():
        if kind in ("workflow", "rules", "scenario") or not (root / folder).is_dir():
            continue
        files = sorted(p for p in (root / folder).iterdir() if p.suffix in YAML_SUFFIXES and p.is_file())
        if kind == "simulation" and definitions is not None:
            from ..simulation.model import check_model

            problems += _guarded(display_path(root / folder), lambda: check_model(definitions, root)[1])
            continue
        for path in files:
            if kind == "report" and definitions is not None:
                from ..reports.definition import load_report

                def report(path: Path = path) -> list[Problem]:
                    try:
                        load_report(definitions, path)
                    except ConfigError as exc:
                        return list(exc.problems)
                    return []

                problems += _guarded(display_path(path), report)
            else:
                problems += _guarded(display_path(path), partial(_schema_check_file, path, kind, vocabularies))
        if kind == "programme" and definitions is not None and files:
            from ..kpis.catalogue import check_programme_kpis

            problems += _guarded(display_path(root / folder), partial(check_programme_kpis, definitions))
            from ..programmes import check_programme_reporting

            problems += _guarded(display_path(root / folder), partial(check_programme_reporting, definitions))
    return problems


def _stale_schema_problems(root: Path, vocabularies: Mapping[str, Any] | None) -> list[Problem]:
    """A warning for each schema in ``ROOT/schemas/`` that is not the one ``qaflow schema`` writes for this configuration.

    Editors read those files; qaflow checks with the schemas made from the rules (configschemas.py), so a
    stale copy makes the editor and ``qaflow validate`` disagree (an editor underlining a new service area
    that validate accepts).
    """
    import json

    from .configschemas import config_schema, schema_kinds, vocabulary_differences

    folder = root / "schemas"
    if not folder.is_dir():
        return []
    problems = []
    fix = f"run 'qaflow --config {display_path(root)} schema --out {display_path(folder)}'"
    for kind in schema_kinds():
        path = folder / f"{kind}.schema.json"
        if not path.is_file():
            continue
        where = Location(display_path(path), 1, 1)
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            problems.append(Problem(where, "warning", "stale-schema", f"this is not a JSON Schema qaflow can read; {fix}"))
            continue
        wanted = config_schema(kind, vocabularies)
        if found == wanted:
            continue
        differences = list(dict.fromkeys(vocabulary_differences(found, wanted)))
        detail = "; ".join(differences[:3]) if differences else "it differs from the schema of this qaflow version"
        problems.append(Problem(where, "warning", "stale-schema",
                                f"out of date for this configuration ({detail}): editors would disagree with qaflow validate; {fix}"))
    return problems


def _check_root(root: Path, cache: bool = False) -> list[Problem]:
    """Everything in one configuration folder: workflows and rules (check_config), scenarios, other kinds."""
    from ..scenarios import load_scenarios
    from .loader import KINDS, _check_config, read_documents

    definitions, problems = _check_config(root, cache=cache, machines=False)  # nothing here runs a workflow
    problems = list(problems)
    for doc in read_documents(root, "workflow")[0]:
        problems += list(iter_tidiness_problems(doc))
    if (root / KINDS["scenario"][0]).is_dir():
        scenarios, found = load_scenarios(root)
        problems += found
        if definitions is not None:
            problems += list(iter_scenario_problems(scenarios, definitions.workflows))
    problems += _check_other_kinds(root, definitions)
    from .loader import vocabularies_of

    problems += _stale_schema_problems(root, definitions.vocabularies if definitions is not None else vocabularies_of(root))
    return problems


def _check_in_context(path: Path, kind: str, context_root: Path | None) -> list[Problem]:
    """One workflow or rules file checked together with the rest of a configuration (a copy of it)."""
    import shutil  # here: with tempfile (and the compression modules shutil imports) only this check needs them
    import tempfile

    from .loader import KINDS
    from .yamlsource import load_yaml_file

    folder = KINDS[kind][0]
    display = display_path(path)
    with tempfile.TemporaryDirectory(prefix="qaflow-validate-") as tmp:
        work = Path(tmp)
        target_id = None
        originals: dict[str, str] = {}  # display path of a copy -> of the file it copies, for messages
        if kind == "workflow":
            doc, _ = load_yaml_file(path)
            if doc is not None and isinstance(doc.data, Mapping):
                target_id = doc.data.get("workflow")
        if context_root is not None and context_root.is_dir():
            for sub in ("rules", "workflows"):
                src = context_root / sub
                if not src.is_dir():
                    continue
                (work / sub).mkdir(exist_ok=True)
                for item in sorted(src.iterdir()):
                    if not item.is_file() or item.suffix not in (".yaml", ".yml") or (item.name == path.name and sub == folder):
                        continue
                    if sub == "workflows" and target_id is not None:
                        other, _ = load_yaml_file(item)
                        if other is not None and isinstance(other.data, Mapping) and other.data.get("workflow") == target_id:
                            continue  # the file being checked replaces the one with its id
                    shutil.copyfile(item, work / sub / item.name)
                    originals[display_path(work / sub / item.name)] = display_path(item)
        (work / folder).mkdir(exist_ok=True)
        copy = work / folder / (path.name if path.suffix in (".yaml", ".yml") else path.name + ".yaml")
        shutil.copyfile(path, copy)
        copied = display_path(copy)
        problems = _check_root(work)
        originals[copied] = display
        out = []
        for p in problems:
            if p.location.file == copied:
                message = p.message
                for copied_name, original in originals.items():
                    message = message.replace(copied_name, original)
                out.append(replace(p, location=replace(p.location, file=display), message=message))
        return out


def _check_file(path: Path, context_root: Path | None) -> list[Problem]:
    from .loader import KINDS
    from .yamlsource import load_yaml_file

    display = display_path(path)
    doc, problems = load_yaml_file(path, display=display)
    if doc is None or any(p.severity == "error" for p in problems):
        return problems
    if doc.data is None:
        return [Problem(Location(display, 1, 1), "error", "empty-file", "the file is empty")]
    kind = detect_kind(path, doc.data)
    if kind is None:
        return problems + [Problem(
            Location(display, 1, 1), "error", "unknown-kind",
            "cannot tell what kind of configuration this is: put it in a folder named workflows, rules, "
            "scenarios or programmes, or start a workflow with 'workflow: NAME'",
        )]
    if kind == "scenario":
        from ..scenarios import load_scenarios

        scenarios, found = load_scenarios([path])
        if not any(p.severity == "error" for p in found) and context_root is not None and context_root.is_dir():
            from .loader import check_config

            definitions, _ = check_config(context_root)
            if definitions is not None:
                found = found + list(iter_scenario_problems(scenarios, definitions.workflows))
        return found
    in_tree = kind in KINDS and path.parent.name == KINDS[kind][0]
    if kind in ("workflow", "rules"):
        if in_tree:
            root = path.parent.parent
            return [p for p in _check_root(root) if Path(p.location.file).resolve() == path.resolve()]
        return _check_in_context(path, kind, context_root)
    if in_tree and kind in ("report", "simulation"):
        root = path.parent.parent
        return [p for p in _check_root(root) if Path(p.location.file).resolve() == path.resolve()]
    from .loader import vocabularies_of

    home = path.parent.parent if path.parent.name in _folder_kinds() else context_root
    return _schema_check_file(path, kind, vocabularies_of(home))


def validate_paths(paths: Sequence[str | Path], default_root: str | Path | None = None, *,
                   cache: bool = False) -> list[Problem]:
    """Every problem in the configuration folders and files given (default: ``default_root``), sorted.

    A folder is a configuration root (with workflows/, rules/, ...) or one of those folders; a file
    is checked with the rest of its configuration (its folder's parent, else ``default_root``).
    ``cache``: a single configuration folder whose files are byte for byte those of a check without
    errors is answered from the per-user cache (engine/config/cache.py). Never raises.
    """
    from .loader import default_config_dir

    context = Path(default_root) if default_root is not None else default_config_dir()
    targets = [Path(p) for p in paths] or [context]
    if cache and len(targets) == 1 and targets[0].is_dir() and _is_root(targets[0]):
        return _cached(targets[0], partial(_validate, targets, context, cache=True))
    return _validate(targets, context)


def _validate(targets: list[Path], context: Path, *, cache: bool = False) -> list[Problem]:
    from ..expressions import building_later
    from .yamlsource import reading_once

    # several checks read the same files: each is parsed once; no check evaluates an expression
    with reading_once(), building_later():
        return _validate_all(targets, context, cache=cache)


def _validate_all(targets: list[Path], context: Path, *, cache: bool = False) -> list[Problem]:
    problems: list[Problem] = []
    for target in targets:
        where = display_path(target)
        if target.is_dir():
            if _is_root(target):
                problems += _guarded(where, partial(_check_root, target, cache))
            elif target.name in _folder_kinds():
                files = sorted(p for p in target.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
                for f in files:
                    problems += _guarded(display_path(f), partial(_check_file, f, context))
            else:
                problems.append(Problem(
                    Location(where), "error", "no-config",
                    f"'{where}' is not a configuration folder: it has none of the folders "
                    + ", ".join(_folder_kinds()),
                ))
        elif target.is_file():
            problems += _guarded(where, partial(_check_file, target, context))
        else:
            problems.append(Problem(Location(where), "error", "no-such-file", f"'{where}' does not exist"))
    unique = list(dict.fromkeys(_one_line(p) for p in problems))
    unique.sort(key=lambda p: (p.sort_key(), p.message))
    return unique


def _root_snapshot(root: Path) -> Any:
    """Every file under ``root`` (hidden folders aside) and the bundled schemas, read and hashed; None: no cache."""
    import os

    from . import cache as entries
    from .loader import bundled_config_dir

    if entries.cache_dir() is None:
        return None
    try:
        paths: list[Path] = []
        for folder, subfolders, names in os.walk(root):
            subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
            paths += (path for path in (Path(folder) / name for name in sorted(names)) if path.is_file())  # no FIFOs
            if len(paths) > entries.MAX_FILES:
                return None
        schemas = [path.read_bytes() for path in sorted((bundled_config_dir() / "schemas").glob("*.json"))]
        context = ("validate", os.getcwd(), str(root))
    except OSError:
        return None
    return entries.snapshot(paths, context=context, blobs=schemas)


def _cached(root: Path, work: Callable[[], list[Problem]]) -> list[Problem]:
    """``work()``'s problems, from the cache when the files are those of a check without errors.

    The files are hashed again after the check: an edit made while it ran is not kept under the old key.
    """
    from . import cache as entries

    snap = _root_snapshot(root)
    if snap is not None:
        payload = entries.load("validate", snap.key)
        if payload is not None:
            try:
                return [Problem.from_dict(d) for d in payload["problems"]]
            except (KeyError, TypeError, ValueError):
                pass  # not an entry this qaflow wrote: check again, and write it anew
    problems = work()
    if snap is not None and not any(p.severity == "error" for p in problems):
        again = _root_snapshot(root)
        if again is not None and again.key == snap.key:
            entries.store("validate", snap.key, {"problems": [p.to_dict() for p in problems]})
    return problems


def _one_line(problem: Problem) -> Problem:
    """Each problem on one line (editors and CI read FILE:LINE:COL lines); the duration forms listed compactly."""
    message = problem.message
    if "\n" not in message:
        return problem
    head = message.split("\n", 1)[0]
    if "accepted forms are:" in head:
        head = head.replace("accepted forms are:", "").rstrip(" :;")
        message = (f"{head}; write it like '10 working days', '28 days', '3 weeks', '3 months', '1 year', "
                   f"'end of week 4', 'end of month', '1st of next month' or 'end of next month', "
                   f"optionally followed by ', next working day' (docs/durations.md)")
    else:
        message = " ".join(message.split())
    return replace(problem, message=message)
