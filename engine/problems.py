"""Problems found in configuration, each with the file, line and column it concerns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Location:
    """A 1-based position in a file; ``line``/``column`` are 0 when unknown."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.column}"
        return self.file


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: ``FILE:LINE:COL: severity: message [code]``."""

    location: Location
    severity: Severity
    code: str
    message: str

    def sort_key(self) -> tuple[str, int, int, str]:
        loc = self.location
        return (loc.file, loc.line, loc.column, self.code)

    def __str__(self) -> str:
        return f"{self.location}: {self.severity}: {self.message} [{self.code}]"

    def to_dict(self) -> dict[str, Any]:
        loc = self.location
        return {
            "file": loc.file,
            "line": loc.line,
            "column": loc.column,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Problem:
        """The problem ``to_dict`` gave; ValueError (or KeyError, TypeError) if ``data`` is not one."""
        severity = data["severity"]
        if severity not in ("error", "warning"):
            raise ValueError(f"not a severity: {severity!r}")
        return cls(Location(str(data["file"]), int(data["line"]), int(data["column"])), severity,
                   str(data["code"]), str(data["message"]))
