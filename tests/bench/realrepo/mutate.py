"""Where a function's body can be cut out (stub) and how it can be made subtly wrong (mutants).

Pure functions over source text: a function is (start_byte, end_byte) from `codeforge symbols
--json`; the body is what follows the docstring (Python) or the outermost brace pair (Rust, Java).
Mutants change one token of the body: a comparison flipped, an arithmetic operator swapped, a
constant off by one, a boolean negated, `and`/`or` swapped. Operators only count as binary ones
with a space on each side (so `Vec<T>` and `-x` are left alone).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize

STUB = {
    "python": "raise NotImplementedError",
    "rust": "todo!()",
    "java": "throw new UnsupportedOperationException();",
}

_SWAP = {
    "<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "==",
    "+": "-", "-": "+", "&&": "||", "||": "&&", "*": "/", "//": "*",
}
_WORD_SWAP = {"and": "or", "or": "and", "True": "False", "False": "True",
              "true": "false", "false": "true", "is": "is not"}
# Calls swapped for their mirror image (only as `.name` or `name(`).
_CALL_SWAP = {"lower": "upper", "upper": "lower", "lstrip": "rstrip", "rstrip": "lstrip",
              "startswith": "endswith", "endswith": "startswith", "min": "max", "max": "min",
              "to_lowercase": "to_uppercase", "to_uppercase": "to_lowercase",
              "toLowerCase": "toUpperCase", "toUpperCase": "toLowerCase",
              "starts_with": "ends_with", "ends_with": "starts_with",
              "startsWith": "endsWith", "endsWith": "startsWith", "first": "last", "last": "first",
              "trim_start": "trim_end", "trim_end": "trim_start"}
# Comparisons first: the mutants a test suite is meant to catch and a weak selection misses.
_RANK = {"<": 0, "<=": 0, ">": 0, ">=": 0, "==": 0, "!=": 0, "is": 0, "int": 1, "and": 2,
         "or": 2, "&&": 2, "||": 2, "True": 3, "False": 3, "true": 3, "false": 3, "+": 4, "-": 4,
         "*": 5, "//": 5, "call": 6, "return": 7}


def line_start(src: str, byte: int) -> int:
    b = src.encode()
    i = b.rfind(b"\n", 0, byte)
    return i + 1


def body_span(language: str, src: str, start: int, end: int) -> tuple[int, int] | None:
    """Byte span of the replaceable body: (first byte, end byte), in the UTF-8 encoding of src."""
    b = src.encode()
    text = b[start:end].decode()
    if language == "python":
        # Whole lines from the function's first line, dedented by that line's indentation.
        ls = line_start(src, start)
        lines = b[ls:end].decode().split("\n")
        ind = len(lines[0]) - len(lines[0].lstrip())
        try:
            mod = ast.parse("\n".join(ln[ind:] for ln in lines))
        except SyntaxError:
            return None
        fn = mod.body[0] if mod.body else None
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) or len(fn.body) < 2:
            return None
        if not (isinstance(fn.body[0], ast.Expr) and isinstance(fn.body[0].value, ast.Constant)
                and isinstance(fn.body[0].value.value, str)):
            return None
        # The body: from the line after the docstring to the function's end.
        off = len("\n".join(lines[: fn.body[0].end_lineno]).encode()) + 1
        return ls + off, end
    # Rust / Java: the last top-level `{ … }` of the item is the body.
    depth, open_at, i = 0, None, 0
    n = len(text)
    while i < n:
        m = _SKIP.match(text, i)
        if m and m.end() > i:
            i = m.end()
            continue
        c = text[i]
        if c == "{":
            if depth == 0:
                open_at = i
            depth += 1
        elif c == "}":
            depth -= 1
        i += 1
    if open_at is None or depth != 0 or not text.rstrip().endswith("}"):
        return None
    close = text.rstrip().rfind("}")
    return start + len(text[: open_at + 1].encode()), start + len(text[:close].encode())


_SKIP = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])\'', re.S)


def stub(language: str, src: str, span: tuple[int, int]) -> str:
    """The file with the body replaced by the language's stub statement (docstring kept)."""
    b = src.encode()
    s, e = span
    body = b[s:e].decode()
    if language == "python":
        first = next((ln for ln in body.split("\n") if ln.strip()), "    ")
        ind = first[: len(first) - len(first.lstrip())]
        new = f"{ind}{STUB['python']}" + ("\n" if body.endswith("\n") else "")
        return b[:s].decode() + new + b[e:].decode()
    # Brace languages: `{` kept before s, `}` at e; indent from the line of the closing brace.
    ls = line_start(src, e)
    close_ind = b[ls:e].decode()
    close_ind = close_ind[: len(close_ind) - len(close_ind.lstrip())]
    new = f"\n{close_ind}    {STUB[language]}\n{close_ind}"
    return b[:s].decode() + new + b[e:].decode()


def sites(language: str, src: str, span: tuple[int, int]) -> list[tuple[int, int, str, str]]:
    """Mutation sites in the body: (byte start, byte end, old, new), best first."""
    b = src.encode()
    s, e = span
    body = b[s:e].decode()
    out: list[tuple[int, int, int, str, str]] = []  # (rank, start, end, old, new)

    def add(kind: str, a: int, z: int, old: str, new: str):
        out.append((_RANK.get(kind, 9), s + len(body[:a].encode()), s + len(body[:z].encode()),
                    old, new))

    if language == "python":
        offs = [0]
        for ln in body.splitlines(keepends=True):
            offs.append(offs[-1] + len(ln))
        try:
            toks = list(tokenize.generate_tokens(io.StringIO(_py_wrap(body)).readline))
        except (tokenize.TokenError, IndentationError, SyntaxError):
            return []
        for t in toks:
            if t.start[0] == 1:
                continue  # the wrapper line
            row, col = t.start[0] - 2, t.start[1]
            if row >= len(offs) - 1:
                continue
            a = offs[row] + col
            z = a + len(t.string)
            before = body[a - 1: a] if a > 0 else ""
            after = body[z: z + 1]
            if t.type == tokenize.OP and t.string in _SWAP and before == " " and after == " ":
                add(t.string, a, z, t.string, _SWAP[t.string])
            elif t.type == tokenize.NAME and t.string in _CALL_SWAP and (
                    before == "." or after == "("):
                add("call", a, z, t.string, _CALL_SWAP[t.string])
            elif t.type == tokenize.NAME and t.string == "return":
                rest = body[z:].split("\n", 1)[0].strip()
                if rest and rest != "None" and not rest.endswith(("(", "[", "{", "\\", ",")):
                    add("return", a, z + len(body[z:].split("\n", 1)[0]), body[a:z] + body[z:].split("\n", 1)[0], "return None")
            elif t.type == tokenize.NAME and t.string in _WORD_SWAP:
                if t.string == "is" and body[z: z + 4] == " not":
                    add("is", a, z + 4, "is not", "is")
                else:
                    add(t.string, a, z, t.string, _WORD_SWAP[t.string])
            elif t.type == tokenize.NUMBER and re.fullmatch(r"\d+", t.string):
                v = int(t.string)
                add("int", a, z, t.string, str(v + 1 if v != 1 else 0))
    else:
        i = 0
        while i < len(body):
            m = _SKIP.match(body, i)
            if m and m.end() > i:
                i = m.end()
                continue
            m = _TOKEN.match(body, i)
            if not m:
                i += 1
                continue
            tok = m.group(0)
            a, z = i, m.end()
            before = body[a - 1: a] if a > 0 else ""
            after = body[z: z + 1]
            if tok in _SWAP and tok != "//" and before == " " and after == " ":
                add(tok, a, z, tok, _SWAP[tok])
            elif tok in _CALL_SWAP and (before == "." or after == "("):
                add("call", a, z, tok, _CALL_SWAP[tok])
            elif tok in ("true", "false"):
                add(tok, a, z, tok, _WORD_SWAP[tok])
            elif re.fullmatch(r"\d+", tok) and not body[z: z + 1].isalpha() and body[a - 1: a] != ".":
                v = int(tok)
                add("int", a, z, tok, str(v + 1 if v != 1 else 0))
            i = z
    out.sort(key=lambda x: (x[0], x[1]))
    return [(a, z, old, new) for _, a, z, old, new in out]


_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+|&&|\|\||<=|>=|==|!=|->|=>|::|\S")


def _py_wrap(body: str) -> str:
    # The body is indented: put it under a def so tokenize sees a whole block.
    return "def _wrap():\n" + body


def apply(src: str, site: tuple[int, int, str, str]) -> str:
    b = src.encode()
    a, z, old, new = site
    assert b[a:z].decode() == old, (b[a:z], old)
    return (b[:a] + new.encode() + b[z:]).decode()


def function_text(src: str, start: int, end: int) -> str:
    """The function as the model would write it: from the start of its first line, dedented."""
    b = src.encode()
    ls = line_start(src, start)
    text = b[ls:end].decode()
    lines = text.split("\n")
    ind = len(lines[0]) - len(lines[0].lstrip())
    return "\n".join(ln[ind:] if ln[:ind].strip() == "" else ln for ln in lines).rstrip() + "\n"
