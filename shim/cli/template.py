"""Docker's ``--format``: a Go text/template subset, and the ``table`` and ``json`` forms.

Supported: text, ``{{.Field.Sub}}``, ``{{.}}``, methods with arguments (``{{.Label "k"}}``: a
callable value), string and number literals, pipelines (``{{.Names | upper}}``), the
``{{-``/``-}}`` trims, ``{{if}}``/``{{else}}``/``{{end}}``, ``{{range}}`` (with ``$``-free
bodies), Docker's template functions (json, index, join, split, upper, lower, title,
truncate, pad, len, println, printf with %s %d %v %q) and Go's eq, ne, not, and, or. Values
print as Go's fmt prints them (``map[k:v]``, ``[a b]``, ``<nil>``). A ``table`` format is a
header row (each field's header) and tab-separated cells aligned as Docker's tabwriter does
(min width 10, padding 3).
"""

from __future__ import annotations

from ..errors import OcishError

TYPE_CHECKING = False  # not typing's: ps imports this module, typing costs ms
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any, TextIO


class TemplateError(OcishError):
    """A template that does not parse or cannot be executed on the data."""


class _Node:
    def __init__(self, kind: str, value: Any = None) -> None:
        self.kind, self.value = kind, value
        self.body: list[_Node] = []
        self.other: list[_Node] = []


def _lex(text: str) -> list[tuple[str, str]]:
    """('text', s) and ('action', s) pieces, with the trim markers applied."""
    out: list[tuple[str, str]] = []
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            out.append(("text", text[pos:]))
            return out
        end = text.find("}}", start + 2)
        if end < 0:
            raise TemplateError(f"template: {text!r}: unclosed action")
        lit = text[pos:start]
        inner = text[start + 2:end]
        if inner.startswith("- ") or inner == "-":
            lit = lit.rstrip()
            inner = inner[1:]
        trim_after = inner.endswith(" -")
        if trim_after:
            inner = inner[:-1]
        out.append(("text", lit))
        out.append(("action", inner.strip()))
        pos = end + 2
        if trim_after:
            while pos < len(text) and text[pos] in " \t\r\n":
                pos += 1


def _words(action: str) -> list[str]:
    """An action's words: strings stay one word (quotes kept), '|' and parens are words."""
    words: list[str] = []
    i = 0
    while i < len(action):
        c = action[i]
        if c in " \t\n":
            i += 1
        elif c in "|()":
            words.append(c)
            i += 1
        elif c in "\"`":
            j = i + 1
            while j < len(action) and action[j] != c:
                j += 2 if action[j] == "\\" and c == '"' else 1
            if j >= len(action):
                raise TemplateError(f"template: unterminated string in {{{{{action}}}}}")
            words.append(action[i:j + 1])
            i = j + 1
        else:
            j = i
            while j < len(action) and action[j] not in " \t\n|()":
                j += 1
            words.append(action[i:j])
            i = j
    return words


def parse(text: str) -> list[_Node]:
    """The template's tree."""
    root: list[_Node] = []
    stack: list[tuple[_Node | None, list[_Node]]] = [(None, root)]
    for kind, piece in _lex(text):
        parent, nodes = stack[-1]
        if kind == "text":
            if piece:
                nodes.append(_Node("text", piece))
            continue
        words = _words(piece)
        head = words[0] if words else ""
        if head in ("if", "range", "with"):
            node = _Node(head, words[1:])
            nodes.append(node)
            stack.append((node, node.body))
        elif head == "else":
            if parent is None:
                raise TemplateError("template: unexpected {{else}}")
            stack[-1] = (parent, parent.other)
        elif head == "end":
            if parent is None:
                raise TemplateError("template: unexpected {{end}}")
            stack.pop()
        elif head.startswith("/*") or not words:
            continue
        else:
            nodes.append(_Node("action", words))
    if len(stack) > 1:
        raise TemplateError("template: unexpected EOF (an {{end}} is missing)")
    return root


def go_str(value: Any) -> str:
    """A value as Go's fmt %v prints it."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        return "map[" + " ".join(f"{go_str(k)}:{go_str(v)}" for k, v in sorted(
            value.items(), key=lambda kv: str(kv[0]))) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    return str(value)


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _printf(fmt: str, *args: Any) -> str:
    out, i, n = [], 0, 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            verb = fmt[i + 1]
            i += 2
            if verb == "%":
                out.append("%")
                continue
            arg = args[n] if n < len(args) else None
            n += 1
            out.append(_json(go_str(arg)) if verb == "q" else go_str(arg))
        else:
            out.append(fmt[i])
            i += 1
    return "".join(out)


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            if isinstance(value, dict):
                return ""  # a map's missing key: the zero value (Docker's maps of strings)
            raise TemplateError(f"template: index of {go_str(value)!r} with {key!r}") from None
    return value


def _truncate(value: Any, n: Any) -> str:
    s = go_str(value)
    return s[:int(n)]


def _pad(value: Any, before: Any, after: Any) -> str:
    return " " * int(before) + go_str(value) + " " * int(after)


FUNCS: dict[str, Callable[..., Any]] = {
    "json": _json, "index": _index, "len": lambda v: len(v) if v is not None else 0,
    "join": lambda v, sep: sep.join(go_str(x) for x in (v or [])),
    "split": lambda s, sep: go_str(s).split(sep), "upper": lambda s: go_str(s).upper(),
    "lower": lambda s: go_str(s).lower(), "title": lambda s: go_str(s).title(),
    "truncate": _truncate, "pad": _pad, "printf": _printf,
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "print": lambda *a: "".join(go_str(x) for x in a),
    "eq": lambda a, *b: any(a == x for x in b), "ne": lambda a, b: a != b,
    "not": lambda a: not _truth(a),
    "and": lambda *a: next((x for x in a if not _truth(x)), a[-1]),
    "or": lambda *a: next((x for x in a if _truth(x)), a[-1]),
}


class _Exec:
    def __init__(self, funcs: Mapping[str, Callable[..., Any]]) -> None:
        self.funcs = funcs

    def field(self, dot: Any, path: str) -> Any:
        value = dot
        for name in path.split(".")[1:]:
            if not name or isinstance(value, _Header):
                continue
            if isinstance(value, dict) and name in value:
                value = value[name]
            elif isinstance(value, dict):
                raise TemplateError(f'template: executing at <{path}>: map has no entry for '
                                    f'key "{name}"')
            else:
                raise TemplateError(f"template: executing at <{path}>: can't evaluate field "
                                    f"{name} in type {type(value).__name__}")
        return value

    def operand(self, word: str, dot: Any) -> Any:
        if word.startswith('"'):
            import json

            try:
                return json.loads(word)
            except ValueError:
                raise TemplateError(f"template: bad string {word}") from None
        if word.startswith("`"):
            return word[1:-1]
        if word.startswith("."):
            return self.field(dot, word)
        if word in ("true", "false"):
            return word == "true"
        if word == "nil":
            return None
        try:
            return int(word)
        except ValueError:
            pass
        if word in self.funcs:
            return self.funcs[word]
        raise TemplateError(f'template: function "{word}" not defined')

    def command(self, words: list[str], dot: Any, piped: list[Any]) -> Any:
        if not words:
            raise TemplateError("template: missing value for command")
        # parenthesised sub-pipelines first
        args: list[Any] = []
        i = 0
        while i < len(words):
            if words[i] == "(":
                depth, j = 1, i + 1
                while j < len(words) and depth:
                    depth += {"(": 1, ")": -1}.get(words[j], 0)
                    j += 1
                if depth:
                    raise TemplateError("template: unclosed left paren")
                args.append(_Value(self.pipeline(words[i + 1:j - 1], dot)))
                i = j
            else:
                args.append(words[i])
                i += 1
        values = [a.value if isinstance(a, _Value) else self.operand(a, dot) for a in args]
        head, rest = values[0], values[1:] + piped
        if callable(head):
            try:
                return head(*rest)
            except TypeError as exc:
                raise TemplateError(f"template: wrong arguments for {args[0]}: {exc}") from None
        if rest:
            raise TemplateError(f"template: can't give argument to non-function {args[0]}")
        return head

    def pipeline(self, words: list[str], dot: Any) -> Any:
        cmds: list[list[str]] = [[]]
        depth = 0
        for w in words:
            if w == "|" and depth == 0:
                cmds.append([])
                continue
            depth += {"(": 1, ")": -1}.get(w, 0)
            cmds[-1].append(w)
        value: Any = None
        for n, cmd in enumerate(cmds):
            value = self.command(cmd, dot, [value] if n else [])
        return value

    def run(self, nodes: list[_Node], dot: Any, out: list[str]) -> None:
        for node in nodes:
            if node.kind == "text":
                out.append(node.value)
            elif node.kind == "action":
                out.append(go_str(self.pipeline(node.value, dot)))
            elif node.kind == "if":
                self.run(node.body if _truth(self.pipeline(node.value, dot)) else node.other,
                         dot, out)
            elif node.kind == "with":
                value = self.pipeline(node.value, dot)
                self.run(node.body if _truth(value) else node.other,
                         value if _truth(value) else dot, out)
            elif node.kind == "range":
                value = self.pipeline(node.value, dot)
                items = [value[k] for k in sorted(value)] if isinstance(value, dict) \
                    else list(value or [])
                if not items:
                    self.run(node.other, dot, out)
                for item in items:
                    self.run(node.body, item, out)


class _Value:
    def __init__(self, value: Any) -> None:
        self.value = value


def _truth(value: Any) -> bool:
    return bool(value) and value != 0


def render(nodes: list[_Node], dot: Any, funcs: Mapping[str, Callable[..., Any]] = FUNCS
           ) -> str:
    """The output of a parsed template on *dot*."""
    out: list[str] = []
    _Exec(funcs).run(nodes, dot, out)
    return "".join(out)


def _preformat(fmt: str) -> tuple[bool, str]:
    """Docker's: ``table`` prefix off, spaces trimmed, ``\\t`` and ``\\n`` made real."""
    is_table = fmt.startswith("table")
    if is_table:
        fmt = fmt[len("table"):]
    fmt = fmt.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    return is_table, fmt


def tabwriter(lines: Iterable[str], minwidth: int = 10, padding: int = 3) -> list[str]:
    """Go's tabwriter as Docker configures it: every tab-terminated cell padded to its
    column's width (the widest cell plus 3, at least 10); what follows the last tab is not
    a cell."""
    rows = [line.split("\t") for line in lines]
    widths: list[int] = []
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            if i == len(widths):
                widths.append(minwidth)
            widths[i] = max(widths[i], len(cell) + padding)
    return ["".join(c.ljust(widths[i]) for i, c in enumerate(row[:-1])) + row[-1]
            for row in rows]


def write(out: TextIO, fmt: str, rows: list[Any], headers: Mapping[str, str],
          json_row: Callable[[Any], Any] | None = None) -> None:
    """Print *rows* with the ``--format`` *fmt*: ``json`` (one JSON object a line, what
    *json_row* gives), ``table ...`` (a header row from *headers*, the field name -> column
    title; unknown fields get their name in capitals) or a plain template per row."""
    if fmt == "json":
        fmt = "{{json .}}"
    is_table, body = _preformat(fmt)
    nodes = parse(body)
    funcs = dict(FUNCS)
    if json_row is not None:
        funcs["json"] = lambda v: _json(json_row(v) if any(v is r for r in rows) else v)
    rendered = [render(nodes, row, funcs) for row in rows]
    if not is_table:
        out.write("".join(r + "\n" for r in rendered))
        return
    header = render(nodes, _Headers(headers), {**FUNCS, **{k: _header_func for k in FUNCS}})
    lines = "\n".join([header, *rendered]).split("\n")
    out.write("".join(line + "\n" for line in tabwriter(lines)))


def _header_func(*args: Any) -> Any:
    """In the header row, every function shows the header of the field it is given."""
    for a in args:
        if isinstance(a, _Header):
            return a
    return args[-1] if args else ""


class _Header(str):
    """The title of a column (a str that stays itself through functions and methods)."""

    def __call__(self, *args: Any) -> _Header:
        return self


class _Headers(dict[str, str]):
    """The header row's data: every field is its column title."""

    def __init__(self, titles: Mapping[str, str]) -> None:
        super().__init__()
        self.titles = titles

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> _Header:
        return _Header(self.titles.get(key, key.upper()))
