"""The numbers both balancers share, and the flags both command lines build from them."""

import dataclasses

import pytest

from lab.cli import OneLineParser
from lab.lb import nginx
from lab.lb.tuning import DEFAULTS, Tuning, add_tuning_arguments, tuning_from_arguments


def parser() -> OneLineParser:
    made = OneLineParser(prog="test")
    add_tuning_arguments(made)
    return made


def test_every_field_is_a_flag_and_unset_flags_keep_the_defaults() -> None:
    assert tuning_from_arguments(parser().parse_args([])) == DEFAULTS
    tuned = tuning_from_arguments(parser().parse_args(
        ["--max-fails", "0", "--fail-timeout", "2.5", "--max-body-size", "1000"]))
    assert tuned == dataclasses.replace(DEFAULTS, max_fails=0, fail_timeout=2.5,
                                        max_body_size=1000)


@pytest.mark.parametrize("args", [["--max-fails", "-1"], ["--read-timeout", "0"],
                                  ["--header-buffers", "1.5"], ["--connect-timeout", "nan"]])
def test_nonsense_is_a_usage_error(args, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(args)
    assert exited.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_the_head_limit_leaves_room_for_one_line_and_its_crlfs() -> None:
    assert DEFAULTS.max_head_size == 2 * 8192
    assert Tuning(header_buffers=1, header_buffer_size=100).max_head_size == 104


def test_nginx_gets_the_same_body_limit() -> None:
    text = nginx.render(nginx.read_template(), ["127.0.0.1:8001"], port=8081,
                        tuning=Tuning(max_body_size=4096))
    assert "client_max_body_size 4096;" in text
    assert f"client_max_body_size {DEFAULTS.max_body_size};" in nginx.render(
        nginx.read_template(), ["127.0.0.1:8001"], port=8081)
