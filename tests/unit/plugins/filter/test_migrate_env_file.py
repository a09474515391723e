"""migrate_env_file reads an env file as systemd's EnvironmentFile= does (env-file.c's state machine)."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.pidock.stack.plugins.filter import migrate_plan as f

CASES: list[tuple[str, str, dict[str, str], list[tuple[int, str]]]] = [
    ("plain", "A=plain\n", {"A": "plain"}, []),
    ("double quotes with escaped quote and backslash", 'PW="p\\"w\\\\d"\n', {"PW": 'p"w\\d'}, []),
    ("single quotes are literal", "PW='p\\\"w'\n", {"PW": 'p\\"w'}, []),
    ("unquoted backslash escapes the next character", "A=a\\ b\\\\c\n", {"A": "a b\\c"}, []),
    ("blanks around key and value drop", "  A =   spaced   \n", {"A": "spaced"}, []),
    ("comments with # and ;", "# one\n  ; two\nA=1\n", {"A": "1"}, []),
    ("# inside a value is not a comment", "A=1 # kept\n", {"A": "1 # kept"}, []),
    ("unquoted line continuation", "A=foo\\\nbar\n", {"A": "foobar"}, []),
    ("double-quoted value spans lines", 'A="line1\nline2"\n', {"A": "line1\nline2"}, []),
    ("double-quoted continuation", 'A="a\\\nb"\n', {"A": "ab"}, []),
    ("other escapes in double quotes keep the backslash", 'A="x\\ny"\n', {"A": "x\\ny"}, []),
    ("no expansion of $", 'A="$HOME"\n', {"A": "$HOME"}, []),
    ("blanks after a closing quote drop, the rest joins", 'A="x"  y z\n', {"A": "xy z"}, []),
    ("escaped $ and backtick", 'A="\\$x\\`"\n', {"A": "$x`"}, []),
    ("empty value", "A=\nB=''\n", {"A": "", "B": ""}, []),
    ("a quote inside an unquoted part is literal", "A=\"a\"b'c'\n", {"A": "ab'c'"}, []),
    ("blanks inside quotes stay", 'A="  x  "\n', {"A": "  x  "}, []),
    ("last assignment wins", "A=1\nA=2\n", {"A": "2"}, []),
    ("CRLF line ends", "A=1\r\nB=2\r\n", {"A": "1", "B": "2"}, []),
    ("no newline at the end", "A=1", {"A": "1"}, []),
    (
        "a comment ending in a backslash is refused (systemd < 254 swallows the next line)",
        "# x \\\nA=1\nB=2\n",
        {"A": "1", "B": "2"},
        [(1, "comment ends with a backslash")],
    ),
    ("export is not systemd syntax", "export A=1\nB=2\n", {"B": "2"}, [(1, "not a valid variable name")]),
    ("a line without =", "A=1\nJUNK\nB=2\n", {"A": "1", "B": "2"}, [(2, "no '='")]),
    ("a name starting with a digit", "1A=x\n", {}, [(1, "not a valid variable name")]),
    ("an unterminated double quote", 'A=1\nB="open\nC=3\n', {"A": "1"}, [(2, "never closed")]),
    ("an unterminated single quote", "B='open", {}, [(1, "never closed")]),
    ("a line without = at the end of the file", "A=1\nJUNK", {"A": "1"}, [(2, "no '='")]),
]


@pytest.mark.parametrize(("name", "text", "values", "errors"), CASES, ids=[c[0] for c in CASES])
def test_env_file_like_systemd(name: str, text: str, values: dict[str, str], errors: list[tuple[int, str]]) -> None:
    parsed = f.migrate_env_file(text)
    assert parsed["values"] == values, name
    assert [e["line"] for e in parsed["errors"]] == [line for line, _problem in errors]
    for err, (_line, problem) in zip(parsed["errors"], errors, strict=True):
        assert problem in err["problem"]


def test_report_never_carries_a_value() -> None:
    text = 'POSTGRES_PASSWORD="s3cr\\"et"\nexport OTHER=hunter2\n'
    report: dict[str, Any] = f.migrate_env_report(text, {"POSTGRES_PASSWORD": "POSTGRES_PASSWORD", "MISSING": "X"})
    assert report == {
        "keys": ["POSTGRES_PASSWORD"],
        "errors": [{"line": 2, "problem": "'export OTHER' is not a valid variable name"}],
        "missing": ["MISSING"],
    }
    assert "s3cr" not in repr(report) and "hunter2" not in repr(report)


def test_secrets_map_keys() -> None:
    text = 'PGPW="p\\"w\\\\d"\nUNUSED=1\n'
    assert f.migrate_env_secrets(text, {"PGPW": "POSTGRES_PASSWORD", "NOPE": "X"}) == {"POSTGRES_PASSWORD": 'p"w\\d'}
