"""``qaflow init``: copy the bundled configuration into a folder the authority owns, to edit from a working copy."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import UsageError

__all__ = ["init_config", "FOLDERS"]

#: The folders of a configuration, as the bundled one has them (schemas: for editors).
FOLDERS = ("workflows", "rules", "programmes", "scenarios", "reports", "simulation", "schemas")
_SUFFIXES = (".yaml", ".yml", ".json")

README = """\
# {name}: this authority's qaflow configuration

This folder is the quality-assurance framework as configuration: it started as a copy of the
configuration that ships with qaflow (`qaflow init`), and it is yours to change. qaflow reads
it from here and never changes the copy inside the installed package.

| folder | what |
|---|---|
| `workflows/` | the workflows: audits, moderation, reviews, escalations, complaints, surveys |
| `rules/` | calendars, timescales, grading, decision tables, alert groups, vocabularies (service areas, themes) |
| `programmes/` | one quarterly QA programme per service area |
| `scenarios/` | given/when/then tests of the workflows, dated by hand |
| `reports/` | what the monthly briefing and the quarterly QA report count |
| `simulation/` | the behaviour model for `qaflow simulate` |
| `schemas/` | JSON Schemas for editors, made for this configuration by `qaflow schema --out` |

Run qaflow from the folder `qaflow init` was run in, with `--config {path}` (a folder named `config`
in the working directory is found without it):

```sh
qaflow --config {path} validate          # every problem, with file:line:column
qaflow --config {path} test              # replay the scenarios
qaflow --config {path} simulate          # a quarter of the programmes on the real engine
```

## Adding a service area

1. Add its key and label to the vocabulary `services` in `rules/vocabularies.yaml`, e.g.
   `- {{key: fostering, label: Fostering}}`. Every check takes the service areas from there: the
   programmes, the `service` of a case audit, the Head of Service table.
2. Copy a programme in `programmes/` (e.g. `get_safe.yaml` to `fostering.yaml`) and change its
   `programme`, `service`, `service_manager`, `teams` and plans.
3. Give the service its Head of Service in `rules/service_leads.yaml` (one row).
4. `qaflow --config {path} schema --out {path}/schemas`, so that your editor knows the new term
   (`qaflow validate` warns while the schemas are out of date), then validate, test and simulate.
"""


def init_config(dest: str | Path, *, source: str | Path | None = None) -> list[Path]:
    """Copy the configuration ``source`` (default: the bundled one) into the new folder ``dest``; return the files written.

    ``dest`` must not exist or be an empty folder: nothing is overwritten. A ``README.md`` in ``dest``
    says how to run qaflow on it and how to add a service area.
    """
    from .loader import bundled_config_dir, display_path

    dest = Path(dest)
    origin = Path(source) if source is not None else bundled_config_dir()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"'{dest}' already exists and is not an empty folder: choose a new folder, nothing was copied")
    if dest.resolve() == origin.resolve() or origin.resolve() in dest.resolve().parents:
        raise UsageError(f"'{dest}' is inside the configuration it would copy")
    written: list[Path] = []
    try:
        for folder in FOLDERS:
            src = origin / folder
            if not src.is_dir():
                continue
            (dest / folder).mkdir(parents=True, exist_ok=True)
            for path in sorted(src.iterdir()):
                if path.is_file() and path.suffix in _SUFFIXES:
                    shutil.copyfile(path, dest / folder / path.name)
                    written.append(dest / folder / path.name)
        readme = dest / "README.md"
        readme.write_text(README.format(name=dest.resolve().name, path=display_path(dest)), encoding="utf-8")
        written.append(readme)
    except OSError as exc:
        raise UsageError(f"cannot write '{dest}': {exc.strerror or exc}") from None
    return written
