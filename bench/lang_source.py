"""Lexical facts about source files of the twelve languages, independent of tree-sitter.

`bench/languages_bench.py` measures Quarry's chunker and graph against these, so they are
written from each language's lexical rules, not from Quarry's queries:

- `identifiers`: every identifier written in code, with comments and string literals left
  out (the ground truth for `quarry refs` recall, as `bench/graph_bench.py` does for Python
  and Rust);
- `doc_above`: the doc comment block right above a definition line, and its first sentence;
- `blank_docs`: the same file with those blocks emptied but every line kept, so a query taken
  from a doc cannot be answered by matching the doc itself.

The lexers are approximate where the language is hard to lex without parsing (Ruby's
regex literals, heredocs and `%w[]`, JavaScript template expressions, PHP heredocs): the
misses are counted in the figures' ground truth, not hidden.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Lexicon:
    """How one language writes comments, strings and identifiers."""

    line_comments: tuple[str, ...]
    block_comment: tuple[str, str] | None
    quotes: str
    ident_start: str = "A-Za-z_"
    triple_quotes: bool = False  # Java text blocks, C# raw strings
    backtick_strings: bool = False  # Go raw strings, JS/TS template literals
    ruby_blocks: bool = False  # =begin ... =end


C_LIKE = Lexicon(("//",), ("/*", "*/"), "\"'")
LEXICONS = {
    "go": Lexicon(("//",), ("/*", "*/"), "\"'", backtick_strings=True),
    "java": Lexicon(("//",), ("/*", "*/"), "\"'", triple_quotes=True),
    "c": C_LIKE,
    "cpp": C_LIKE,
    "csharp": Lexicon(("//",), ("/*", "*/"), "\"'", triple_quotes=True),
    "typescript": Lexicon(("//",), ("/*", "*/"), "\"'", "A-Za-z_$", backtick_strings=True),
    "javascript": Lexicon(("//",), ("/*", "*/"), "\"'", "A-Za-z_$", backtick_strings=True),
    "php": Lexicon(("//", "#"), ("/*", "*/"), "\"'", "A-Za-z_$"),
    "ruby": Lexicon(("#",), None, "\"'", ruby_blocks=True),
}


def _ident_pattern(lang: str) -> re.Pattern[str]:
    if lang == "ruby":
        # `@ivar`, `@@cvar` and `$global` are names of their own; methods may end in ? or !.
        return re.compile(r"(?:@@?|\$)?[A-Za-z_]\w*(?:[?!](?!=))?")
    start = LEXICONS[lang].ident_start
    return re.compile(f"[{start}][A-Za-z0-9_$]*" if "$" in start else f"[{start}][A-Za-z0-9_]*")


# Words a language also uses as keywords or built-in types, so a lexer cannot tell a use of
# a function of that name from the keyword (`Notification<never>` beside rxjs's `never()`):
# ground truth is not counted for them.
RESERVED = {
    "typescript": {"never", "any", "unknown", "string", "number", "boolean", "void", "object",
                   "symbol", "bigint", "undefined", "type", "readonly", "keyof", "infer"},
    "javascript": {"undefined"},
}

_INCLUDE = re.compile(r"^[ \t]*#[ \t]*(?:include|import)[ \t]*<[^>\n]*>", re.M)
_HEREDOC = {
    "ruby": re.compile(r"<<[~-]?(['\"`]?)([A-Z_][A-Z0-9_]*)\1"),
    "php": re.compile(r"<<<[ \t]*(['\"]?)([A-Za-z_]\w*)\1"),
}
_PERCENT_LITERAL = re.compile(r"%[wWiIqQrsx]?([(\[{<|!/])")
_CLOSERS = {"(": ")", "[": "]", "{": "}", "<": ">"}


def _interpolation(lang: str, quote: str) -> str | None:
    """What opens code inside a string of `quote`: `#{` in Ruby's "...", `${` in `...`."""
    if lang == "ruby" and quote in "\"`":
        return "#{"
    if lang in ("typescript", "javascript") and quote == "`":
        return "${"
    return None


def code_mask(text: str, lang: str) -> str:
    """`text` with every comment and string literal replaced by spaces (newlines kept), so
    offsets and lines stay those of the file; code interpolated into strings stays."""
    lex = LEXICONS[lang]
    out = list(text)
    n = len(text)
    heredocs: list[tuple[int, int]] = []  # bodies to blank when the scan reaches them

    def blank(a: int, b: int) -> None:
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = " "

    def string_end(i: int, quote: str, multiline: bool) -> int:
        """Blanks the string opening at `i` but its interpolated code; returns its end."""
        opener = _interpolation(lang, quote)
        j = i + 1
        while j < n and text[j] != quote and (multiline or text[j] != "\n"):
            if text[j] == "\\":
                j += 2
                continue
            if opener and text.startswith(opener, j):
                depth, k = 1, j + 2
                while k < n and depth:
                    depth += {"{": 1, "}": -1}.get(text[k], 0)
                    k += 1
                blank(i, j + 2)
                i = k - 1  # the closing brace is blanked with the rest
                j = k
                continue
            j += 1
        blank(i, j + 1)
        return j + 1

    if lang in ("c", "cpp"):
        for m in _INCLUDE.finditer(text):
            blank(m.start(), m.end())  # `#include <a/b.h>` names a file, not identifiers

    i = 0
    at_line_start = True
    while i < n:
        if heredocs and i >= heredocs[0][0]:
            start, end = heredocs.pop(0)
            blank(start, end)
            i = max(i, end)
            continue
        c = text[i]
        if lex.ruby_blocks and at_line_start and text.startswith("=begin", i):
            end = text.find("\n=end", i)
            end = n if end < 0 else end + 5
            blank(i, end)
            i = end
            continue
        at_line_start = c == "\n"
        heredoc = _HEREDOC.get(lang)
        m = heredoc.match(text, i) if heredoc and c == "<" else None
        if m:
            body = text.find("\n", m.end())
            if body >= 0:
                tag = m.group(2)
                end = re.compile(rf"^[ \t]*{tag}\b.*$", re.M).search(text, body + 1)
                heredocs.append((body + 1, end.end() if end else n))
                heredocs.sort()
            i = m.end()
            continue
        if lang == "php" and text.startswith("#[", i):
            i += 2  # an attribute, not a comment
            continue
        if any(text.startswith(p, i) for p in lex.line_comments):
            end = text.find("\n", i)
            end = n if end < 0 else end
            blank(i, end)
            i = end
            continue
        if lex.block_comment and text.startswith(lex.block_comment[0], i):
            end = text.find(lex.block_comment[1], i + 2)
            end = n if end < 0 else end + len(lex.block_comment[1])
            blank(i, end)
            i = end
            continue
        if lex.triple_quotes and text.startswith('"""', i):
            end = text.find('"""', i + 3)
            end = n if end < 0 else end + 3
            blank(i, end)
            i = end
            continue
        if c == "`" and lex.backtick_strings:
            i = string_end(i, "`", multiline=True)
            continue
        if c in lex.quotes:
            if lang == "ruby" and c == "'" and i > 0 and text[i - 1].isalnum():
                i += 1
                continue
            i = string_end(i, c, multiline=lang == "ruby")
            continue
        if lang == "ruby" and c == "%":
            m = _PERCENT_LITERAL.match(text, i)
            before = text[:i].rstrip()[-1:]
            if m and not (before.isalnum() or before in ")]}_"):
                close = _CLOSERS.get(m.group(1), m.group(1))
                end = text.find(close, m.end())
                end = n if end < 0 else end + 1
                blank(i, end)
                i = end
                continue
        if lang == "ruby" and c == ":" and i + 1 < n and (text[i + 1].isalpha() or text[i + 1] == "_") \
                and (i == 0 or text[i - 1] not in ":" and not text[i - 1].isalnum()):
            m = re.compile(r"[A-Za-z_]\w*[?!]?").match(text, i + 1)
            end = m.end() if m else i + 1
            blank(i, end)  # a symbol literal, not a use of the name
            i = end
            continue
        i += 1
    return "".join(out)


def identifiers(text: str, lang: str) -> list[tuple[int, int, str]]:
    """(line, 1-based byte column, name) of every identifier written in code."""
    masked = code_mask(text, lang)
    pattern = _ident_pattern(lang)
    out = []
    for number, line in enumerate(masked.split("\n"), start=1):
        for m in pattern.finditer(line):
            out.append((number, len(line[: m.start()].encode("utf-8")) + 1, m.group(0)))
    return out


# ---------------------------------------------------------------- doc comments

_ANNOTATION = re.compile(r"^\s*(@[\w.]+(\(.*\))?|\[[\w.]+.*\]|#\[.*\]|template\s*<.*>)\s*$")


_RETURN_TYPE_LINE = re.compile(r"^\s*[A-Za-z_][\w\s\*&:<>,]*$")


def _comment_line(line: str, lang: str) -> bool:
    s = line.strip()
    if lang == "ruby":
        return s.startswith("#")
    if lang == "php" and s.startswith("#") and not s.startswith("#["):
        return True
    return s.startswith(("//", "/*", "*", "*/"))


def doc_block(lines: list[str], def_line: int, lang: str) -> tuple[int, int] | None:
    """The 1-based inclusive line range of the comment block right above `def_line` (past
    annotations and attributes), or None when the definition has none."""
    i = def_line - 2
    while i >= 0 and _ANNOTATION.match(lines[i]):
        i -= 1
    if lang in ("c", "cpp") and i >= 0 and _RETURN_TYPE_LINE.match(lines[i]):
        i -= 1  # GNU style: the return type on the line above the name
    end = i
    while i >= 0 and _comment_line(lines[i], lang):
        i -= 1
    start = i + 1
    if start > end:
        return None
    top = lines[start].strip()
    if lang != "ruby" and not top.startswith(("//", "/*", "#")):
        return None  # the block's opener is not in it: not a comment we can read
    if any("*/" in lines[k] and not lines[k].rstrip().endswith("*/") for k in range(start, end + 1)):
        return None  # code after a block comment's end on the same line
    return start + 1, end + 1


def doc_text(lines: list[str], block: tuple[int, int]) -> str:
    """The prose of a doc block: comment markers, doc tags and XML tags removed."""
    words = []
    for line in lines[block[0] - 1: block[1]]:
        s = line.strip()
        s = re.sub(r"^(/\*\*?|\*/|\*|///?|#+)", "", s).strip()
        s = s.removesuffix("*/").strip()
        if s.startswith(("@", "<param", "<returns", "<exception", "<typeparam", "<see")):
            break  # tag sections follow the summary
        s = re.sub(r"</?\w+[^>]*>", " ", s)  # XML and HTML tags
        s = re.sub(r"\{@\w+\s+([^}]*)\}", r"\1", s)  # {@link Foo}
        words.append(s)
    return " ".join(" ".join(words).split())


def first_sentence(doc: str, name: str) -> str | None:
    """A query from a doc: its first sentence, 6-30 words, not naming the definition.

    Go's convention starts a doc with the name ("Get issues a GET ..."): the name is dropped,
    so no query gives away the identifier it is about."""
    sentence = re.split(r"(?<=[.!?])\s", doc, maxsplit=1)[0].rstrip(".")
    sentence = re.sub(rf"^(?:(?:A|An|The)\s+)?{re.escape(name)}\b\s*", "", sentence)
    sentence = re.sub(r"^[\s():\-]+", "", sentence)  # what is left of `name() :`
    if not sentence[:1].isalpha() or "***" in sentence or "===" in sentence:
        return None
    words = sentence.split()
    if not 6 <= len(words) <= 30:
        return None
    lowered = sentence.lower()
    if lowered.startswith(("deprecated", "see ", "copyright", "license")) or re.match(r"[A-Z]+:", sentence):
        return None  # not a description: a notice, or a tag such as TODO: or HACK:
    if re.search(rf"\b{re.escape(name)}\b", sentence, re.I):
        return None
    return sentence


def blank_docs(lines: list[str], blocks: list[tuple[int, int]], lang: str) -> list[str]:
    """`lines` with each block's lines reduced to an empty line comment at their indent."""
    marker = "#" if lang == "ruby" else "//"
    out = list(lines)
    for start, end in blocks:
        for k in range(start - 1, end):
            indent = re.match(r"\s*", out[k]).group(0)
            out[k] = f"{indent}{marker}"
    return out
