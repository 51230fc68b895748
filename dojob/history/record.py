"""A run record: what the history keeps of one run, built from its :class:`~dojob.report.Report`.

The per-job columns are packed so that recording a 10 000-job run costs a few
milliseconds: statuses as one byte each (indexes into the run's own list of
status names, so a status this code does not know is kept by its value
string), tries as unsigned 32-bit integers, elapsed seconds as 32-bit floats
(NaN when the job never ran), each zlib-compressed. Only errors get a row each.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import operator
import os
import sys
import zlib
from array import array
from collections.abc import Sequence
from typing import Any

from ..digest import sha1_hex
from ..host import hostname, username
from ..observe import one_line

__all__ = [
    "MAX_ERROR_CHARS",
    "RunRecord",
    "build_record",
    "error_first_line",
    "iso",
    "pack_names",
    "resolve",
    "roots_key",
    "target_key",
    "unpack_names",
]

#: Longest error line kept (characters).
MAX_ERROR_CHARS = 300


def iso(timestamp: float) -> str:
    """A wall-clock time as ISO 8601 in UTC, to the microsecond (``2026-12-01T23:05:10.123456Z``)."""
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def error_first_line(exception: BaseException) -> str:
    """``"Type: first line of the message"``, made safe for one terminal line and at most 300 characters."""
    try:
        message = str(exception)
    except Exception:  # a hostile __str__ must not lose the record
        message = "<unprintable>"
    first = message.strip().splitlines()[0] if message.strip() else ""
    name = type(exception).__name__
    return one_line(f"{name}: {first}" if first else name, MAX_ERROR_CHARS)


def _little(values: array) -> bytes:
    if sys.byteorder != "little":  # pragma: no cover - big-endian machines
        values.byteswap()
    return zlib.compress(values.tobytes(), 1)


def _unlittle(typecode: str, data: bytes) -> array:
    values = array(typecode)
    values.frombytes(zlib.decompress(data))
    if sys.byteorder != "little":  # pragma: no cover
        values.byteswap()
    return values


def names_digest(names: Sequence[str]) -> str:
    """A digest of a graph's job names, in order (what runs of the same graph share)."""
    joined = "\x00".join(names)
    if joined.count("\x00") != max(len(names) - 1, 0):  # a name holds a NUL: join is ambiguous
        joined = json.dumps(list(names))
    return sha1_hex(joined.encode("utf-8", "surrogatepass"))


def pack_names(names: Sequence[str]) -> tuple[str, bytes]:
    """The digest and packed form of a graph's job names."""
    raw = json.dumps(list(names), ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    return names_digest(names), zlib.compress(raw, 1)


def unpack_names(data: bytes) -> list[str]:
    """The job names packed by :func:`pack_names`."""
    return json.loads(zlib.decompress(bytes(data)).decode("utf-8", "surrogatepass"))


class RunRecord:
    """One run as the history keeps it (see :mod:`dojob.history.schema`).

    A plain class with slots, not a dataclass: it is defined on every recorded
    run's path, where a dataclass's generated methods cost a millisecond.
    """

    __slots__ = (
        "started", "ended", "target", "targets", "kind", "host", "username", "cwd", "version", "options",
        "verdict", "success", "stopped", "counts", "elapsed", "names", "status_names", "statuses", "tries",
        "times", "errors", "findings", "verified", "id", "always_run", "roots",
    )  # fmt: skip

    def __init__(
        self,
        *,
        started: str,
        ended: str,
        target: str,
        targets: list[str],
        kind: str,
        host: str,
        username: str,
        cwd: str,
        version: str,
        options: list[str],
        verdict: str,
        success: bool,
        stopped: str | None,
        counts: dict[str, int],
        elapsed: float,
        names: Sequence[str],
        status_names: list[str],
        statuses: bytes,
        tries: array,
        times: array,
        errors: list[tuple[int, str]],
        findings: dict[str, Any] | None = None,
        verified: bool | None = None,
        id: int | None = None,
        always_run: frozenset[str] = frozenset(),
        roots: str | None = None,
    ) -> None:
        self.started, self.ended, self.target, self.targets = started, ended, target, targets
        self.kind = kind  #: "run", "plan" for a ``dojob check``, "no_act" for DoJobber's look-only run
        self.host, self.username, self.cwd, self.version, self.options = host, username, cwd, version, options
        self.verdict, self.success, self.stopped, self.counts, self.elapsed = verdict, success, stopped, counts, elapsed
        self.names, self.status_names, self.statuses = names, status_names, statuses  #: one index per job
        self.tries, self.times, self.errors = tries, times, errors
        self.findings = {} if findings is None else findings
        self.verified, self.id = verified, id
        #: Jobs that run every time by design (RunonlyJob): never flagged for changing every time.
        self.always_run = always_run
        #: The root jobs' names, joined by commas (what ``dojob history ROOT`` matches).
        self.roots = target if roots is None else roots

    def __repr__(self) -> str:
        return f"RunRecord(id={self.id!r}, target={self.target!r}, kind={self.kind!r}, verdict={self.verdict!r})"

    def status_of(self) -> list[str]:
        """Each job's status value string, in order."""
        names = self.status_names
        return [names[c] for c in self.statuses]

    def packed(self) -> tuple[bytes, bytes, bytes]:
        """The statuses, tries and times columns as stored."""
        return zlib.compress(self.statuses, 1), _little(self.tries), _little(self.times)

    @staticmethod
    def unpack(statuses: bytes, tries: bytes, times: bytes) -> tuple[bytes, array, array]:
        """The stored columns back as bytes, tries and times."""
        return zlib.decompress(bytes(statuses)), _unlittle("I", bytes(tries)), _unlittle("f", bytes(times))


def roots_key(roots: Sequence[str]) -> str:
    """The root jobs' names, joined by commas (what ``dojob history ROOT`` matches)."""
    return ",".join(roots)


def resolve(target: str, cwd: str | None = None) -> str:
    """A TARGET with its file resolved (symlinks too) against ``cwd`` (default: the current folder).

    ``world.py:Root`` -> ``/srv/world.py:Root``; a module's (``pkg.jobs:Root``) is kept as given.
    """
    where, sep, attr = target.rpartition(":")
    if not sep or not where:
        return target
    path = where if cwd is None else os.path.join(cwd, where)
    if where.endswith(".py") or os.sep in where or "/" in where or os.path.isfile(path):
        return f"{os.path.realpath(path)}:{attr}"
    return target


def target_key(targets: Sequence[str] | None, graph: Any = None, roots: Sequence[str] = ()) -> str:
    """What runs of the same target share: each TARGET with its file resolved, joined by commas.

    ``targets`` are the ``dojob`` command's (``file.py:Root``, ``package.module:Root``):
    ``world.py:Root`` run from ``/srv`` is ``/srv/world.py:Root``, so two files with a
    ``Root`` never share a history, and a subset of one (``--only``, ``--skip``) is
    the same target. From Python (no TARGETs) each root is ``module:Name``, the
    module a script's path when it is ``__main__``.
    """
    if targets:
        return ",".join(resolve(t) for t in targets)
    specs = {} if graph is None else {s.name: s for s in (graph[n] for n in roots if n in graph)}
    parts = []
    for name in roots:
        spec = specs.get(name)
        cls = getattr(spec, "cls", None)
        module = getattr(getattr(cls, "job", cls), "__module__", None) or "?"
        if module == "__main__" or module.startswith("dojob_target_"):  # a script, or a file dojob imported
            file = getattr(sys.modules.get(module), "__file__", None)
            module = os.path.realpath(file) if file else module
        parts.append(f"{module}:{name}")
    return ",".join(parts)


def _whoami() -> str:
    try:
        return username()
    except Exception:  # no user name (a container's uid without a passwd entry)
        return str(os.getuid()) if hasattr(os, "getuid") else "?"


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:  # the folder was removed
        return "?"


def _codes(statuses: Sequence[Any]) -> tuple[bytes, list[str]]:
    """Each status as one byte, an index into the returned status names (their value strings)."""
    n = len(statuses)
    first = statuses[0] if n else None
    if n and statuses.count(first) == n:  # a converged run: every job ok (no per-job work)
        return bytes(n), [getattr(first, "value", str(first))]
    vocab: dict[Any, int] = {}
    codes = bytes(vocab.setdefault(s, len(vocab)) for s in statuses)
    return codes, [getattr(s, "value", str(s)) for s in vocab]


_COUNT_KEYS = ("ok", "ok_retried", "changed", "retried", "failed", "blocked", "interrupted", "not_run", "skipped")


def _counts(report: Any, names: list[str], codes: bytes, tries: array, errors: list) -> dict[str, int]:
    """The recap's counts (see :func:`dojob.recap.counts`), without a pass over the jobs when nothing failed."""
    if not errors and report.stopped is None and (not tries or max(tries) <= 1):
        out = dict.fromkeys(_COUNT_KEYS, 0)
        for i, name in enumerate(names):
            if name in out:
                out[name] += codes.count(i)
        return out
    from ..recap import counts

    return counts(report)


def build_record(
    report: Any,
    *,
    started: float,
    ended: float,
    targets: Sequence[str] | None,
    options: Sequence[str],
    unstable: dict[str, str] | None = None,
    plan: bool | None = None,
    target: str | None = None,
) -> RunRecord:
    """The record of ``report``, a run that started and ended at these wall-clock times.

    Args:
        report: the run's :class:`~dojob.report.Report`.
        started, ended: ``time.time()`` at its start and end.
        targets: the TARGETs given (default: the root jobs' names).
        options: the option names given.
        unstable: job -> error of the jobs a verification found unstable (None: not verified).
        plan: whether it was a plan run (default: read from the report).
        target: the runs' key (default: :func:`target_key` of ``targets`` and the report's roots).
    """
    from .. import __version__

    jobs = report.jobs
    column = jobs.column if hasattr(jobs, "column") else (lambda f: [getattr(j, f) for j in jobs.values()])
    names = list(jobs)
    if plan is None:
        plan = any(jobs[n].plan is not None for n in {names[0], names[-1]}) if names else False
    exceptions = column("exception")
    if exceptions.count(None) == len(exceptions):
        errors: list[tuple[int, str]] = []
    else:
        errors = [(i, error_first_line(exc)) for i, exc in enumerate(exceptions) if exc is not None]
    tries = array("I", column("tries"))
    if plan:
        plans = column("plan")
        codes, status_names = _codes([p or "not_checked" for p in plans])
        count_map = {name: codes.count(i) for i, name in enumerate(status_names)}
        would = any(p is None or p.startswith("would_run") for p in plans)
        verdict = "changes needed" if would or report.stopped else "nothing would run"
        success = verdict == "nothing would run"
    else:
        codes, status_names = _codes(column("status"))
        success = bool(report.success)
        verdict = "unstable" if unstable else ("converged" if success else "not converged")
        count_map = _counts(report, status_names, codes, tries, errors)
        if unstable:
            count_map["unstable"] = len(unstable)
    starts, ends = column("started"), column("ended")
    if None in starts or None in ends:
        nan = math.nan
        times = array("f", [nan if s is None or e is None else e - s for s, e in zip(starts, ends, strict=True)])
    else:
        times = array("f", map(operator.sub, ends, starts))
    roots = tuple(getattr(report, "roots", ()) or ())
    graph = getattr(report, "graph", None)
    always_run: frozenset[str] = frozenset()
    if graph is not None and any(name != "ok" for name in status_names):  # (all ok: no drift, no flapping)
        always_run = frozenset(s.name for s in graph.specs if s.kind == "runonly")
    return RunRecord(
        started=iso(started),
        ended=iso(ended),
        target=target if target is not None else target_key(targets, graph, roots),
        roots=roots_key(roots),
        targets=list(targets) if targets is not None else list(roots),
        kind="plan" if plan else "run",
        host=hostname(),
        username=_whoami(),
        cwd=_cwd(),
        version=__version__,
        options=list(options),
        verdict=verdict,
        success=success and not unstable,
        stopped=report.stopped,
        counts=count_map,
        elapsed=float(report.elapsed),
        names=names,
        status_names=status_names,
        statuses=codes,
        tries=tries,
        times=times,
        errors=errors,
        verified=None if unstable is None else not unstable,
        findings={"unstable": dict(unstable)} if unstable else {},
        always_run=always_run,
    )
