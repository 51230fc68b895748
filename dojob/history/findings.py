"""What a run was found to be against its history, and how the recap and the report show it.

:class:`Findings` is attached to the run's report as ``report.history``; the
recap (:func:`dojob.recap.summary`) and the HTML report call its
:meth:`~Findings.recap_lines` and :meth:`~Findings.html_section`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..observe import one_line

__all__ = ["MAX_NAMES", "MAX_STRIP_ROWS", "STRIP_RUNS", "Findings", "flap_words", "when"]

#: Job names listed on one recap line; the rest are counted.
MAX_NAMES = 10
#: Runs shown in each job's strip in the HTML report.
STRIP_RUNS = 10
#: Most jobs given a strip.
MAX_STRIP_ROWS = 1500


def when(iso_time: str | None) -> str:
    """An ISO time from the history as people read it: ``2026-12-01 23:05:10 UTC``."""
    if not iso_time:
        return "?"
    return one_line(iso_time[:19].replace("T", " "), 40) + " UTC"


def flap_words(window: int) -> str:
    """The flag of a job that changed in every run of the window."""
    return f"changed in each of the last {window} runs: is it idempotent?"


def _names(names: list[str], limit: int = MAX_NAMES) -> str:
    shown = ", ".join(one_line(n, 200) for n in names[:limit])
    if len(names) > limit:
        shown += f" ... and {len(names) - limit} more"
    return shown


@dataclass
class Findings:
    """Drift, flapping and verification of one run.

    Attributes:
        run_id: the run's id in the history (None: not recorded).
        location: the history it was recorded in (no password).
        target: the runs it was compared with: the same target (see :func:`.record.target_key`).
        drifted: jobs converged in the last converged run that needed their Run now.
        drift_base, drift_since: that run's id and end time.
        flapping: jobs that changed in each of the last ``flap_window`` runs.
        unstable: job -> error, for jobs whose Check failed when verified after the run.
        verified: True/False after a verification, None if there was none (or it was stopped
            before it found anything).
        verify_stopped: what stopped the verification (``interrupted``, ``terminated``,
            ``timeout``), if something did: the jobs it did not reach are not verified.
        warning: why the run was not recorded, if it was not.
    """

    run_id: int | None = None
    location: str | None = None
    target: str = ""
    drifted: list[str] = field(default_factory=list)
    drift_base: int | None = None
    drift_since: str | None = None
    flapping: list[str] = field(default_factory=list)
    flap_window: int = 3
    unstable: dict[str, str] = field(default_factory=dict)
    verified: bool | None = None
    verify_stopped: str | None = None
    warning: str | None = None
    history: Any = None

    def recap_lines(self, color: bool = False) -> list[str]:
        """The recap's lines about this run's history (before its verdict line)."""

        def paint(text: str, sgr: str) -> str:
            return f"\x1b[{sgr}m{text}\x1b[0m" if color else text

        lines = []
        for name, error in list(self.unstable.items())[:20]:
            lines.append(f"{paint('UNSTABLE', '31;1')}  {one_line(name, 200)} (Check fails after the run): {error}")
        if len(self.unstable) > 20:
            lines.append(f"... and {len(self.unstable) - 20} more unstable jobs")
        if self.verify_stopped:
            lines.append(
                paint(f"NOT VERIFIED  the verification was stopped ({one_line(self.verify_stopped, 40)})", "33;1")
            )
        if self.drifted:
            lines.append(
                paint(f"drifted since {when(self.drift_since)} (run {self.drift_base}): ", "33;1")
                + _names(self.drifted)
            )
        if self.flapping:
            lines.append(paint(flap_words(self.flap_window), "33;1") + " " + _names(self.flapping))
        return lines

    def html_section(self) -> str:
        """The report's History section: drifted, flagged and unstable jobs, then each job's last runs."""
        from ..htmlreport import STATUS_COLORS, _esc, _name

        parts = ['<section id="history"><h2>History</h2>']
        if self.run_id is not None:
            parts.append(f'<p class="note">Run {self.run_id} of {_esc(self.target)} in {_esc(self.location)}.</p>')
        elif self.warning:
            parts.append(f'<p class="note">{_esc(self.warning)}</p>')
        if self.drifted:
            parts.append(
                f'<p id="drifted"><b>drifted since {_esc(when(self.drift_since))} (run {self.drift_base}):</b> '
                + ", ".join(_name(n) for n in self.drifted)
                + "</p>"
            )
        if self.flapping:
            parts.append(
                f'<p id="flapping"><b>{_esc(flap_words(self.flap_window))}</b> '
                + ", ".join(_name(n) for n in self.flapping)
                + "</p>"
            )
        if self.unstable:
            parts.append(
                '<p id="unstable"><b>unstable (Check fails after the run):</b> '
                + ", ".join(f"{_name(n)} ({_esc(e)})" for n, e in self.unstable.items())
                + "</p>"
            )
        parts.append(self._strip_table(STATUS_COLORS, _esc, _name))
        parts.append("</section>")
        return "\n".join(p for p in parts if p)

    def _strip_table(self, colors: dict[str, str], esc: Any, name: Any) -> str:
        if self.history is None or self.run_id is None:
            return ""
        from . import open_store

        try:
            store = open_store(self.history.location)
            try:
                runs, strips = store.strips(self.target, self.run_id, STRIP_RUNS)
            finally:
                store.close()
        except Exception as exc:  # the report is written all the same
            return f'<p class="note">The history could not be read: {esc(one_line(str(exc), 300))}</p>'
        head = "".join(f"<th>#{r}</th>" for r in runs)
        rows = []
        for job, statuses in list(strips.items())[:MAX_STRIP_ROWS]:
            cells = "".join(
                f'<td title="{esc(s or "not in this run")}" style="background:{colors.get(s or "", "#ffffff")}"></td>'
                for s in statuses
            )
            rows.append(f"<tr><th>{name(job)}</th>{cells}</tr>")
        more = ""
        if len(strips) > MAX_STRIP_ROWS:
            more = f'<p class="note">... and {len(strips) - MAX_STRIP_ROWS} more jobs.</p>'
        return (
            f'<p class="note">Each job in the last {len(runs)} runs, oldest first (hover a cell for its status).</p>'
            f'<table class="strip" id="strip"><thead><tr><th>job</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>{more}"
        )
