"""``python -m dojob`` and the ``dojob`` console script: the ``dojob`` command (see :mod:`dojob.cli`).

:func:`main` imports the command inside a guard: a Ctrl-C while it is imported
or while its parser is built (before :mod:`dojob.cli` handles signals) ends the
command quietly with 130, as one during the run would, not with a traceback.
"""

import sys


def main() -> int:
    """Run the ``dojob`` command; return its exit status."""
    try:
        from .cli import main as command

        return command()
    except KeyboardInterrupt:  # it landed before the command's own handling (importing it, building the parser)
        sys.stderr.write("dojob: interrupted before the run started: nothing ran\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
