"""The command-line parser follows Go's flag package, as runc's callers expect."""

from __future__ import annotations

import pytest

from ocirt.cli.flags import BOOL, INT, LIST, STR, Flag, parse
from ocirt.errors import UsageError

FLAGS = [Flag("bundle,b", STR, "."), Flag("detach,d", BOOL), Flag("preserve-fds", INT, 0),
         Flag("env,e", LIST)]


@pytest.mark.parametrize("argv", [
    ["--bundle", "/b", "c1"], ["--bundle=/b", "c1"], ["-bundle", "/b", "c1"], ["-b", "/b", "c1"],
    ["-b=/b", "c1"], ["c1", "--bundle", "/b"],
])
def test_value_forms(argv: list[str]) -> None:
    values, args = parse(FLAGS, argv)
    assert values["bundle"] == "/b" and args == ["c1"]


def test_bool_forms_and_repeats() -> None:
    assert parse(FLAGS, ["-d", "--detach", "x"])[0]["detach"] is True
    assert parse(FLAGS, ["--detach=false", "x"])[0]["detach"] is False
    values, args = parse(FLAGS, ["--detach", "false"])
    assert values["detach"] is True and args == ["false"]


def test_lists_and_ints() -> None:
    values, _ = parse(FLAGS, ["-e", "A=1", "--env=B=2", "--preserve-fds", "3", "id"])
    assert values["env"] == ["A=1", "B=2"] and values["preserve_fds"] == 3


def test_stop_at_positional_keeps_the_command_line() -> None:
    values, args = parse(FLAGS, ["-d", "c1", "sh", "-c", "echo --bundle"], stop_at_positional=True)
    assert values["detach"] and args == ["c1", "sh", "-c", "echo --bundle"]


def test_double_dash_ends_flags() -> None:
    assert parse(FLAGS, ["--", "-d"])[1] == ["-d"]


@pytest.mark.parametrize("argv, message", [
    (["--nope"], "flag provided but not defined: -nope"),
    (["--bundle"], "flag needs an argument: -bundle"),
    (["--preserve-fds", "x"], "invalid value"),
    (["--detach=maybe"], "invalid boolean value"),
])
def test_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse(FLAGS, argv)
