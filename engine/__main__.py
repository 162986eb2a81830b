"""``python -m engine``: the same as the ``qaflow`` command."""

from .cli import main

main(prog_name="qaflow")
