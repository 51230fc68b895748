"""``python -m dojob.dojobber script.py ARGS...``: run a DoJobber script, unchanged, on dojob.

The script runs as ``__main__`` (its directory first on ``sys.path``, ``sys.argv`` its
own, as ``python script.py`` would), with ``dojobber`` aliased to :mod:`dojob.dojobber`
for this process only. ``-m module`` runs a module instead of a file.
"""

from __future__ import annotations

import os
import runpy
import sys

from . import alias

USAGE = "usage: python -m dojob.dojobber SCRIPT.py [ARGS...] | -m MODULE [ARGS...]\n"


def main(argv: list[str] | None = None) -> int:
    """Run the script or module named by ``argv`` (``sys.argv[1:]``); return an exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help") or (argv[0] == "-m" and len(argv) < 2):
        sys.stderr.write(USAGE)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    alias()
    if argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        sys.path.insert(0, os.getcwd())
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        return 0
    script = argv[0]
    if not os.path.exists(script):
        sys.stderr.write(f"dojob.dojobber: no such script {script!r}\n")
        return 2
    sys.argv = [script, *argv[1:]]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
