"""Shared pieces of the command line: JSON / table output, bad input -> exit status 2."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer

from startrt.output import key_value_table, plain, print_tables, to_json
from startrt.validation import InvalidInputError

if TYPE_CHECKING:
    from startrt.protocol.definition import Protocol

P = ParamSpec("P")
R = TypeVar("R")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
ProtocolPath = Annotated[
    Path | None,
    typer.Option("--protocol", help="Protocol TOML file (default: the shipped START-01 version)."),
]
InputFile = Annotated[Path, typer.Argument(help="JSON input file.")]


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def refuses_bad_input(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the library's input errors into exit status 2 with the message on stderr."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except ValueError as error:
            # Imported here, not at the top, to keep the protocol layer out of the calculators'
            # start-up; a ProtocolFileError can only come from an already imported module.
            from startrt.protocol.definition import ProtocolFileError

            if isinstance(error, InvalidInputError | ProtocolFileError):
                raise fail(str(error)) from None
            raise

    return wrapper


def protocol_from(path: Path | None) -> Protocol:
    from startrt.protocol.definition import default_protocol, load_protocol

    return default_protocol() if path is None else load_protocol(path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InvalidInputError("FILE", str(path), f"cannot be read: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise InvalidInputError("FILE", str(path), f"is not valid JSON: {error}") from None


def emit(as_json: bool, data: Any, title: str) -> None:
    if as_json:
        typer.echo(to_json(data))
    else:
        shown = {key: value for key, value in plain(data).items() if key != "inputs"}
        print_tables(key_value_table(title, shown))
