"""Read one YAML document into plain data, remembering where every node was written."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from engine.problems import Location, Problem

__all__ = ["Document", "load_yaml", "load_yaml_file", "reading_once", "MAX_ALIAS_NODES", "MAX_DEPTH"]

#: Nodes that alias expansion may add to a document before it is refused as a bomb.
MAX_ALIAS_NODES = 100_000
#: Deepest nesting of lists and mappings accepted; later stages recurse over the data.
MAX_DEPTH = 100

_Loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader

_CORE = "tag:yaml.org,2002:"
_INT = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
# libyaml reads YAML 1.1, which also breaks lines at NEL, LS and PS.
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")

_SEQ, _MAP = 0, 1
_SEQ_TAG, _MAP_TAG = _CORE + "seq", _CORE + "map"
_SKIP = object()  # the value under a duplicate or unusable key is read, then dropped


class _Fatal(Exception):
    """Stop reading: the problem already recorded makes the rest meaningless."""


@dataclass(frozen=True)
class Document:
    """One YAML file as plain data, with the 1-based line and column of every node.

    ``positions`` maps a path (keys and list indices) to where its value starts;
    ``key_positions`` maps a mapping entry's path to where its key is written.
    ``source`` is the decoded text and ``string_nodes`` records, for each string
    value, ``(style, start_line, start_col, end_line, end_col)`` (0-based marks) so
    that :meth:`scalar_location` can point inside it. ``aliases`` maps the path of
    each alias to the path of its anchor: positions inside an aliased value are
    looked up where the anchor wrote them rather than stored once per copy.
    """

    file: str
    data: Any
    positions: Mapping[tuple, tuple[int, int]]
    key_positions: Mapping[tuple, tuple[int, int]]
    source: str = field(default="", repr=False, compare=False)
    string_nodes: Mapping[tuple, tuple] = field(default_factory=dict, repr=False, compare=False)
    aliases: Mapping[tuple, tuple] = field(default_factory=dict, repr=False, compare=False)

    def location(self, path: Sequence, *, key: bool = False) -> Location:
        """Where ``path`` is written; its nearest known ancestor if it is not in the file."""
        path = tuple(path)
        if key:
            pos = self._find(self.key_positions, path)
            if pos is not None:
                return Location(self.file, *pos)
        while True:
            pos = self._find(self.positions, path)
            if pos is not None:
                return Location(self.file, *pos)
            if not path:
                return Location(self.file, 1, 1)
            path = path[:-1]

    def _find(self, table: Mapping[tuple, Any], path: tuple) -> Any:
        """Look ``path`` up in ``table``, following aliases back to their anchors."""
        for _ in range(MAX_DEPTH):
            found = table.get(path)
            if found is not None or not self.aliases:
                return found
            for cut in range(len(path), -1, -1):
                target = self.aliases.get(path[:cut])
                if target is not None:
                    path = target + path[cut:]
                    break
            else:
                return None
        return None

    def scalar_location(self, path: Sequence, offset_line: int, offset_column: int) -> Location:
        """Where a point inside a string value is written in the file.

        ``offset_line``/``offset_column`` are 1-based within the parsed string, as an
        expression parser reports them. Folded and multi-line scalars are mapped back
        by aligning the parsed text with the raw source lines.
        """
        path = tuple(path)
        info = self._find(self.string_nodes, path)
        value = self._value_at(path)
        if info is None or not isinstance(value, str):
            return self.location(path)
        try:
            line, column = _locate_in_scalar(self.source, info, value, offset_line, offset_column)
        except Exception:  # a best effort: never let error reporting fail
            return self.location(path)
        return Location(self.file, line, column)

    def _value_at(self, path: tuple) -> Any:
        node = self.data
        for part in path:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return None
        return node


# --------------------------------------------------------------------------- loading


#: Inside ``reading_once()``: (file name, text, limit) -> what load_yaml answered for it.
_READ: ContextVar[dict[tuple[str, str | bytes, int], tuple[Document | None, list[Problem]]] | None] = \
    ContextVar("qaflow_yaml_read", default=None)


@contextmanager
def reading_once() -> Iterator[None]:
    """Within this block the same text under the same name is parsed once, and its Document shared.

    ``qaflow validate`` runs checks that each read what they need (the programmes are read by four);
    the Documents they share must be read, never changed, as every check here does.
    """
    token = _READ.set({}) if _READ.get() is None else None
    try:
        yield
    finally:
        if token is not None:
            _READ.reset(token)


def load_yaml(
    text: str | bytes, file: str, *, max_bytes: int = 1_000_000
) -> tuple[Document | None, list[Problem]]:
    """Parse one YAML document; never raises, every failure is a Problem."""
    read = _READ.get()
    key = (file, bytes(text) if isinstance(text, (bytearray, memoryview)) else text, max_bytes)
    if read is not None and key in read:
        doc, problems = read[key]
        return doc, list(problems)
    try:
        doc, problems = _load(text, file, max_bytes)
    except Exception as exc:  # pragma: no cover - the last line of defence
        doc, problems = None, [_problem(file, 1, 1, "yaml-syntax", f"cannot read YAML: {exc!r}")]
    if read is not None:
        read[key] = (doc, list(problems))
    return doc, problems


def load_yaml_file(
    path: str | Path, *, display: str | None = None, max_bytes: int = 1_000_000
) -> tuple[Document | None, list[Problem]]:
    """Read and parse a YAML file; ``display`` is the name used in problems."""
    name = display if display is not None else str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        return None, [_problem(name, 0, 0, "file-unreadable", f"cannot read file: {reason}")]
    if len(raw) > max_bytes:
        return None, [_too_large(name, max_bytes)]
    return load_yaml(raw, name, max_bytes=max_bytes)


def _load(text: str | bytes, file: str, max_bytes: int) -> tuple[Document | None, list[Problem]]:
    if isinstance(text, (bytes, bytearray, memoryview)):
        raw = bytes(text)
        if len(raw) > max_bytes:
            return None, [_too_large(file, max_bytes)]
        decoded = _decode(raw, file)
        if isinstance(decoded, Problem):
            return None, [decoded]
        text = decoded
    else:
        if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
            return None, [_too_large(file, max_bytes)]
        bad = _unencodable(text, file)
        if bad is not None:
            return None, [bad]
    if text.startswith("\ufeff"):
        text = text[1:]

    builder = _Builder(file, text)
    try:
        builder.run()
    except _Fatal:
        return None, builder.problems
    except yaml.MarkedYAMLError as exc:
        return None, builder.problems + [_syntax_problem(exc, file, text)]
    except yaml.reader.ReaderError as exc:
        line, column = _line_col(text, _char_index(text, exc.position))
        return None, builder.problems + [_problem(file, line, column, "yaml-syntax", _reader_message(exc))]
    except (RecursionError, MemoryError):
        return None, builder.problems + [
            _problem(file, 1, 1, "too-deep", "the document is nested too deeply to read")
        ]
    except Exception as exc:  # libyaml or the reader failing in an unforeseen way
        return None, builder.problems + [_problem(file, 1, 1, "yaml-syntax", f"cannot read YAML: {exc}")]
    return builder.document(), builder.problems


def _too_large(file: str, max_bytes: int) -> Problem:
    return _problem(
        file, 1, 1, "file-too-large", f"file is larger than the limit of {max_bytes:,} bytes; not read"
    )


def _decode(raw: bytes, file: str) -> str | Problem:
    for bom, name in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                      (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):
        if raw.startswith(bom) and not raw.startswith(codecs.BOM_UTF8):
            return _problem(file, 1, 1, "encoding", f"file is {name} encoded; save it as UTF-8")
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]  # the BOM sits before column 1
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        line_start = before.rfind(b"\n") + 1
        column = len(before[line_start:].decode("utf-8", "replace")) + 1
        byte = raw[exc.start]
        return _problem(
            file, line, column, "encoding",
            f"file is not valid UTF-8 (byte 0x{byte:02x} at line {line}, column {column}); save it as UTF-8",
        )


def _unencodable(text: str, file: str) -> Problem | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line, column = _line_col(text, exc.start)
        return _problem(file, line, column, "encoding", "text contains a character that is not valid Unicode")
    return None


def _line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of a character index, counting YAML line breaks."""
    index = max(0, min(index, len(text)))
    line, start = 1, 0
    for match in _LINE_BREAK.finditer(text, 0, index):
        if match.end() > index:
            break
        line += 1
        start = match.end()
    return line, index - start + 1


def _char_index(text: str, position: int) -> int:
    """libyaml reports reader errors as a byte offset into UTF-8; PyYAML's reader in characters."""
    if _Loader is yaml.SafeLoader:
        return position
    return len(text.encode("utf-8")[:position].decode("utf-8", "ignore"))


def _split_lines(text: str) -> list[str]:
    return _LINE_BREAK.split(text)


def _problem(file: str, line: int, column: int, code: str, message: str) -> Problem:
    return Problem(Location(file, line, column), "error", code, message)


def _reader_message(exc: yaml.reader.ReaderError) -> str:
    char = exc.character
    if isinstance(char, int):
        char = chr(char) if char < 0x110000 else "?"
    code = f"#x{ord(char):04x}" if isinstance(char, str) and len(char) == 1 else repr(char)
    return f"character {code} is not allowed in YAML ({exc.reason})"


def _syntax_problem(exc: yaml.MarkedYAMLError, file: str, text: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = (exc.problem or "invalid YAML").strip()
    message = problem
    if exc.context:
        context = exc.context.strip()
        if context.startswith("while"):
            context = "found " + context
        cmark = exc.context_mark
        if cmark is not None and (cmark.line + 1, cmark.column + 1) != (line, column):
            context += f" that started at line {cmark.line + 1}, column {cmark.column + 1}"
        message += f" ({context})"
    if "nesting depth" in problem:  # libyaml's own limit, met while scanning ahead
        return _problem(file, line, column, "too-deep",
                        f"lists and mappings are nested more than {MAX_DEPTH} levels deep")
    lines = _split_lines(text)
    source_line = lines[line - 1] if 0 < line <= len(lines) else ""
    indent = source_line[: len(source_line) - len(source_line.lstrip(" \t"))]
    at_mark = source_line[column - 1 : column]
    if "\t" in indent or at_mark == "\t" or re.search(r"\btab\b", problem):
        message += "; hint: YAML does not allow tabs for indentation, indent with spaces"
    elif "mapping values are not allowed" in problem:
        message += "; hint: put text containing ': ' in quotes, or write it as a block (>-)"
    return _problem(file, line, column, "yaml-syntax", message)


# --------------------------------------------------------------------------- building


#: The first characters of a plain scalar that can be anything but text: null, true, false, a number.
_NOT_ONLY_TEXT = frozenset("~nNtTfF+-.0123456789")


def _resolve_plain(value: str) -> Any:
    """YAML 1.2 core resolution, except that yes/no/on/off stay words."""
    if value and value[0] not in _NOT_ONLY_TEXT:  # most plain scalars are words
        return value
    if value in ("", "~", "null", "Null", "NULL"):
        return None
    lowered = value.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    if value[0] in "+-.0123456789":
        try:
            if _INT.match(value):
                return int(value)
            if _FLOAT.match(value):
                return float(value)
        except ValueError:  # e.g. more digits than int() accepts
            return value
    return value


def _show_tag(tag: str) -> str:
    return "!!" + tag[len(_CORE):] if tag.startswith(_CORE) else tag


class _Frame:
    __slots__ = ("kind", "data", "path", "record", "is_key", "mark", "anchor",
                 "count_start", "height", "expect_key", "key", "seen")

    def __init__(self, kind, path, record, is_key, mark, anchor, count_start):
        self.kind = kind
        self.data: Any = {} if kind == _MAP else []  # a mapping or a sequence, by kind
        self.path = path
        self.record = record
        self.is_key = is_key
        self.mark = mark
        self.anchor = anchor
        self.count_start = count_start
        self.height = 1
        self.expect_key = True
        self.key: Any = _SKIP
        self.seen: dict[Any, tuple[int, int]] = {}


class _Anchor:
    """An anchored node: its data, where it was recorded (None if not), its size."""

    __slots__ = ("data", "path", "count", "height", "scalar")

    def __init__(self, data, path, count, height, scalar):
        self.data = data
        self.path = path
        self.count = count
        self.height = height
        self.scalar = scalar


class _Builder:
    """Turns PyYAML's event stream into plain data without recursion.

    Working from events rather than ``compose``'s node tree keeps the position of
    every alias (where a bomb is refused), lets duplicates be caught as they are
    read, and cannot overflow Python's stack on deeply nested input.
    """

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.text = text
        self.problems: list[Problem] = []
        self.stack: list[_Frame] = []
        # path -> (line, column) (a path written twice keeps its first place and its last value)
        self.positions: dict[tuple, tuple[int, int]] = {}
        self.keys: dict[tuple, tuple[int, int]] = {}
        self.strings: dict[tuple, tuple] = {}
        self.anchors: dict[str, _Anchor] = {}
        self.aliases: dict[tuple, tuple] = {}
        self.count = 0
        self.expanded = 0
        self.root: Any = None
        self.documents = 0

    # -- driving

    def run(self) -> None:
        loader = _Loader(self.text)
        # by the event's class (each event is of exactly one of these); a loop of isinstance was a fifth of reading
        handlers: dict[type, Any] = {
            yaml.ScalarEvent: self._scalar,
            yaml.MappingStartEvent: self._start_map,
            yaml.MappingEndEvent: self._end_event,
            yaml.SequenceStartEvent: self._start_seq,
            yaml.SequenceEndEvent: self._end_event,
            yaml.AliasEvent: self._alias,
        }
        get_event = loader.get_event
        scalar_event: Any = yaml.ScalarEvent
        stack, positions, strings, keys = self.stack, self.positions, self.strings, self.keys
        try:
            while True:
                event: Any = get_event()
                if type(event) is scalar_event and event.tag is None and event.anchor is None and stack:
                    # the usual scalar, placed here as _scalar places it (one call less for most events)
                    self.count += 1
                    value = event.value if event.style else _resolve_plain(event.value)
                    top = stack[-1]
                    if top.kind == _SEQ:
                        if top.record:
                            path = top.path + (len(top.data),)
                            start = event.start_mark
                            positions[path] = (start.line + 1, start.column + 1)
                            if isinstance(value, str):
                                end = event.end_mark
                                strings[path] = (event.style or "", start.line, start.column, end.line, end.column)
                        top.data.append(value)
                    elif top.expect_key:
                        if type(value) is str and value not in top.seen:  # a new key, as _take_key takes it
                            top.expect_key = False
                            start = event.start_mark
                            pos = (start.line + 1, start.column + 1)
                            top.seen[value] = pos
                            top.key = value
                            if top.record:
                                keys[top.path + (value,)] = pos
                        else:
                            self._take_key(value, event.start_mark)
                    else:
                        key = top.key
                        if key is not _SKIP:
                            if top.record:
                                path = top.path + (key,)
                                start = event.start_mark
                                positions[path] = (start.line + 1, start.column + 1)
                                if isinstance(value, str):
                                    end = event.end_mark
                                    strings[path] = (event.style or "", start.line, start.column, end.line, end.column)
                            top.data[key] = value
                        top.expect_key = True
                        top.key = _SKIP
                    continue
                handler = handlers.get(type(event))
                if handler is not None:
                    handler(event)
                elif event is None or isinstance(event, yaml.StreamEndEvent):
                    return
                elif isinstance(event, yaml.DocumentStartEvent):
                    self.documents += 1
                    if self.documents > 1:
                        self._error(event.start_mark, "multiple-documents",
                                    "found a second YAML document ('---'); a file must hold exactly one")
                        return
                elif isinstance(event, yaml.ScalarEvent):
                    self._scalar(event)
                elif isinstance(event, yaml.AliasEvent):
                    self._alias(event)
                elif isinstance(event, yaml.SequenceStartEvent):
                    self._start(_SEQ, event)
                elif isinstance(event, yaml.MappingStartEvent):
                    self._start(_MAP, event)
                elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                    self._end()
        finally:
            dispose = getattr(loader, "dispose", None)
            if dispose is not None:
                dispose()

    def document(self) -> Document:
        positions, keys, strings = self.positions, self.keys, self.strings
        return Document(
            self.file,
            self.root,
            MappingProxyType(positions),
            MappingProxyType(keys),
            self.text,
            MappingProxyType(strings),
            MappingProxyType(self.aliases),
        )

    # -- helpers

    def _error(self, mark, code: str, message: str) -> None:
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        self.problems.append(_problem(self.file, line, column, code, message))

    def _slot(self) -> tuple[tuple, bool, bool]:
        """(path, record positions?, is a mapping key?) for the next node."""
        if not self.stack:
            return (), True, False
        top = self.stack[-1]
        if top.kind == _SEQ:
            return top.path + (len(top.data),), top.record, False
        if top.expect_key:
            return top.path, False, True
        if top.key is _SKIP:
            return top.path, False, False
        return top.path + (top.key,), top.record, False

    def _place(self, value: Any, height: int) -> None:
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
        top.height = max(top.height, height + 1)
        if top.kind == _SEQ:
            top.data.append(value)
        else:
            if top.key is not _SKIP:
                top.data[top.key] = value
            top.expect_key = True
            top.key = _SKIP

    def _take_key(self, key: Any, mark) -> None:
        top = self.stack[-1]
        top.expect_key = False
        pos = (mark.line + 1, mark.column + 1)
        try:
            first = top.seen.get(key)
        except TypeError:  # unhashable: only reachable through odd tags
            first = None
            key = _SKIP
        if key is _SKIP:
            top.key = _SKIP
            return
        if first is not None:
            self._error(mark, "duplicate-key",
                        f"duplicate key {_show_key(key)} (first defined at line {first[0]}, column {first[1]})")
            top.key = _SKIP
            return
        top.seen[key] = pos
        top.key = key
        if top.record:
            self.keys[top.path + (key,)] = pos

    def _bad_key(self, mark, what: str) -> None:
        top = self.stack[-1]
        top.expect_key = False
        top.key = _SKIP
        self._error(mark, "bad-key", f"a mapping key must be a single word or text, not {what}")

    # -- events

    def _scalar(self, event) -> None:
        self.count += 1
        if event.tag is None:  # the usual case, as _scalar_value answers it
            value = event.value if event.style else _resolve_plain(event.value)
        else:
            value = self._scalar_value(event)
        stack = self.stack
        if stack and event.anchor is None:  # the usual case, as _slot and _place below do it
            top = stack[-1]
            if top.kind == _SEQ:
                if top.record:
                    path = top.path + (len(top.data),)
                    start = event.start_mark
                    self.positions[path] = (start.line + 1, start.column + 1)
                    if isinstance(value, str):
                        end = event.end_mark
                        self.strings[path] = (event.style or "", start.line, start.column, end.line, end.column)
                top.data.append(value)  # a scalar leaves the height of its list as it is
                return
            if top.expect_key:
                self._take_key(value, event.start_mark)
                return
            key = top.key
            if key is not _SKIP:
                if top.record:
                    path = top.path + (key,)
                    start = event.start_mark
                    self.positions[path] = (start.line + 1, start.column + 1)
                    if isinstance(value, str):
                        end = event.end_mark
                        self.strings[path] = (event.style or "", start.line, start.column, end.line, end.column)
                top.data[key] = value
            top.expect_key = True
            top.key = _SKIP
            return
        path, record, is_key = self._slot()
        if event.anchor is not None:
            recorded = record and not is_key
            self.anchors[event.anchor] = _Anchor(value, path if recorded else None, 1, 0, True)
        if is_key:
            self._take_key(value, event.start_mark)
            return
        if record:
            self.positions[path] = (event.start_mark.line + 1, event.start_mark.column + 1)
            if isinstance(value, str):
                self.strings[path] = self._string_info(event)
        self._place(value, 0)

    @staticmethod
    def _string_info(event) -> tuple:
        start, end = event.start_mark, event.end_mark
        return (event.style or "", start.line, start.column, end.line, end.column)

    def _scalar_value(self, event) -> Any:
        value, tag, style = event.value, event.tag, event.style
        if tag is None:
            return _resolve_plain(value) if not style else value
        if tag == "!" or tag == _CORE + "str":
            return value
        if tag == _CORE + "null":
            if value in ("", "~", "null", "Null", "NULL"):
                return None
        elif tag == _CORE + "bool":
            if value.lower() in ("true", "false"):
                return value.lower() == "true"
        elif tag == _CORE + "int":
            if _INT.match(value):
                try:
                    return int(value)
                except ValueError:
                    pass
        elif tag == _CORE + "float":
            if _FLOAT.match(value) or _INT.match(value):
                return float(value)
        else:
            self._error(event.start_mark, "yaml-tag",
                        f"unsupported tag '{_show_tag(tag)}'; write plain YAML without tags")
            return value
        self._error(event.start_mark, "yaml-tag", f"{value!r} cannot be read as {_show_tag(tag)}")
        return value

    def _alias(self, event) -> None:
        mark = event.start_mark
        anchor = self.anchors.get(event.anchor)
        path, record, is_key = self._slot()
        if anchor is None:
            self._error(mark, "yaml-syntax", f"found undefined alias '*{event.anchor}'")
            if is_key:
                self._bad_key(mark, "an undefined alias")
            else:
                self._place(None, 0)
            return
        self.expanded += anchor.count
        if self.expanded > MAX_ALIAS_NODES:
            self._error(mark, "alias-bomb", "too many aliases/expanded nodes (YAML alias bomb?)")
            raise _Fatal
        if len(self.stack) + anchor.height > MAX_DEPTH:
            self._error(mark, "too-deep", f"lists and mappings are nested more than {MAX_DEPTH} levels deep")
            raise _Fatal
        self.count += anchor.count
        if is_key:
            if anchor.scalar:
                self._take_key(anchor.data, mark)
            else:
                self._bad_key(mark, "an alias of a list or mapping")
            return
        if record:
            self.positions[path] = (mark.line + 1, mark.column + 1)
            if anchor.path is not None:
                self.aliases[path] = anchor.path
        self._place(_copy(anchor.data), anchor.height)

    def _start_map(self, event) -> None:
        self._start(_MAP, event)

    def _start_seq(self, event) -> None:
        self._start(_SEQ, event)

    def _end_event(self, event) -> None:
        self._end()

    def _start(self, kind: int, event) -> None:
        self.count += 1
        mark = event.start_mark
        if len(self.stack) >= MAX_DEPTH:
            self._error(mark, "too-deep", f"lists and mappings are nested more than {MAX_DEPTH} levels deep")
            raise _Fatal
        tag = event.tag
        if tag is not None and tag not in ("!", _SEQ_TAG if kind == _SEQ else _MAP_TAG):
            self._error(mark, "yaml-tag", f"unsupported tag '{_show_tag(tag)}'; write plain YAML without tags")
        path, record, is_key = self._slot()
        if record:
            self.positions[path] = (mark.line + 1, mark.column + 1)
        self.stack.append(_Frame(kind, path, record, is_key, mark, event.anchor, self.count))

    def _end(self) -> None:
        frame = self.stack.pop()
        if frame.kind == _MAP and not frame.expect_key:  # a key with no value event; cannot happen
            self._place(None, 0)
        if frame.anchor is not None:
            self.anchors[frame.anchor] = _Anchor(
                frame.data,
                frame.path if frame.record else None,
                self.count - frame.count_start + 1,
                frame.height,
                False,
            )
        if frame.is_key:
            self._bad_key(frame.mark, "a list" if frame.kind == _SEQ else "a mapping")
            return
        self._place(frame.data, frame.height)


def _copy(value: Any) -> Any:
    """Copy plain data (each alias gets its own lists and mappings, as if written out)."""
    if type(value) is dict:
        return {key: _copy(item) for key, item in value.items()}
    if type(value) is list:
        return [_copy(item) for item in value]
    return value


def _show_key(key: Any) -> str:
    return f"'{key}'" if isinstance(key, str) else repr(key)


# --------------------------------------------------------------------------- inside scalars


def _skip_properties(line: str, col: int) -> int:
    """Skip an anchor (&a) or tag (!t) written before a scalar, returning where it starts."""
    while col < len(line) and line[col] in "&!":
        while col < len(line) and line[col] not in " \t":
            col += 1
        while col < len(line) and line[col] in " \t":
            col += 1
    return col


def _locate_in_scalar(
    source: str, info: tuple, value: str, offset_line: int, offset_column: int
) -> tuple[int, int]:
    style, start_line, start_col, end_line, end_col = info
    lines = _split_lines(source)
    value_lines = value.split("\n")
    offset_line = min(max(offset_line, 1), len(value_lines))
    offset_column = max(offset_column, 1)
    target = sum(len(part) + 1 for part in value_lines[: offset_line - 1])
    target += min(offset_column - 1, len(value_lines[offset_line - 1]))

    stream: list[tuple[str, int, int]] = []  # (character, 0-based line, 0-based column)
    if style in ("|", ">"):
        header = lines[start_line]
        indicator = header[_skip_properties(header, start_col):]
        digits = re.match(r"[|>][-+]?([1-9])?", indicator)
        body = lines[start_line + 1 : end_line + 1]
        if digits and digits.group(1):
            indent = len(header) - len(header.lstrip(" ")) + int(digits.group(1))
        else:
            indent = next((len(ln) - len(ln.lstrip(" ")) for ln in body if ln.strip()), 0)
        for number, text in enumerate(body, start=start_line + 1):
            for column in range(indent, len(text)):
                stream.append((text[column], number, column))
            stream.append(("\n", number, len(text)))
        fallback = (start_line + offset_line, indent + offset_column - 1)
    else:
        first = _skip_properties(lines[start_line], start_col)
        if style in ("'", '"'):
            first += 1
        for number in range(start_line, min(end_line, len(lines) - 1) + 1):
            text = lines[number]
            begin = first if number == start_line else 0
            stop = end_col if number == end_line else len(text)
            for column in range(begin, min(stop, len(text))):
                stream.append((text[column], number, column))
            if number != end_line:
                stream.append(("\n", number, len(text)))
        fallback = (start_line + offset_line - 1, (first if offset_line == 1 else 0) + offset_column - 1)
        if style == '"' and "\\" in "".join(ch for ch, _, _ in stream):
            return fallback[0] + 1, fallback[1] + 1  # escapes make the alignment unreliable

    found = _align(stream, value, target)
    if found is None:
        return fallback[0] + 1, fallback[1] + 1
    return found[0] + 1, found[1] + 1


def _align(stream: list[tuple[str, int, int]], value: str, target: int) -> tuple[int, int] | None:
    """Walk the parsed value and its raw source together, skipping what parsing removed."""
    if not value:
        return (stream[0][1], stream[0][2]) if stream else None
    past_end = target >= len(value)
    if past_end:
        target = len(value) - 1
    i = j = 0
    while j < len(stream):
        char, line, column = stream[j]
        wanted = value[i]
        if char == wanted or (wanted == " " and char == "\n"):
            if i == target:
                return (line, column + 1) if past_end else (line, column)
            i += 1
        j += 1
    return None
