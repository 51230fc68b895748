"""Tests for examples/movie_night.py, run for real against dojob (no mocks)."""

import importlib.util
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "movie_night.py"

GOOD = ["--battery_state", "charged", "--couch_space"]

# Every job of the graph, with the status it ends in when run with the
# default arguments: no TV (dead batteries), no seat, so everything that
# depends on them is blocked and everything else succeeds.
DEFAULT_STATUS = {
    "WatchMovie": None,
    "StartMovie": None,
    "TurnOnTV": False,
    "SitOnCouch": False,
    "DimTheLights": True,
    "PickMovie": True,
    "Snacks": True,
    "Popcorn": True,
    "PopcornBowl": True,
    "Pizza": True,
    "FriendsArrive": True,
    "InviteFriends": True,
    "SendInvite[NAME='Wendell Bagg']": True,
    "SendInvite[NAME='Lawyer Cat']": True,
    "SendInvite[NAME='Ada Lovelace']": True,
}
ALL_TRUE = dict.fromkeys(DEFAULT_STATUS, True)

TRACE_LINE = re.compile(r'^(\w+|SendInvite\[[^]]*\])\.(check|run|recheck): (pass|fail)(?: "(.*)")?$')


@pytest.fixture(scope="module")
def movie_night():
    """The example, imported from its path (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("movie_night", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def run(movie_night, *argv):
    """Run the example in-process; return the finished DoJobber."""
    return movie_night.plan_movie_night(movie_night.parse_args(list(argv)))


def trace(stderr):
    """Parse the verbose trace into (job, phase, result, message) tuples."""
    return [m.groups() for m in map(TRACE_LINE.match, stderr.splitlines()) if m]


def recheck_failures(stderr):
    """The jobs of the ``Name.recheck: fail "..."`` lines, in order."""
    return [job for job, phase, result, _ in trace(stderr) if phase == "recheck" and result == "fail"]


# -- outcomes -------------------------------------------------------------


def test_default_args_fail_on_tv_and_couch(movie_night, capsys):
    assert movie_night.main([]) == 1
    out = capsys.readouterr().out
    assert "Remote batteries are dead." in out
    assert "No movie tonight" in out

    dojob = run(movie_night)
    assert dojob.nodestatus == DEFAULT_STATUS
    assert not dojob.success()
    assert dojob.failure()
    assert dojob.partial_success()
    assert str(dojob.nodeexceptions["TurnOnTV"]) == "Remote batteries are dead."
    assert str(dojob.nodeexceptions["SitOnCouch"]) == "No space on couch."
    assert dojob.noderesults["DimTheLights"] == "dimmed"  # RunonlyJob result


def test_good_args_everything_succeeds(movie_night, capsys):
    assert movie_night.main(GOOD) == 0
    out = capsys.readouterr().out
    assert "Enjoy the movie!" in out
    assert "FAILED" not in out and "blocked" not in out

    dojob = run(movie_night, *GOOD)
    assert dojob.nodestatus == ALL_TRUE
    assert dojob.success()
    assert not dojob.failure()


@pytest.mark.parametrize(
    "extra, expected_base",
    [
        ([], DEFAULT_STATUS),
        (GOOD, ALL_TRUE),
    ],
)
def test_bad_movie_blocks_the_movie(movie_night, capsys, extra, expected_base):
    assert movie_night.main(["--movie", "Zardoz", *extra]) == 1
    assert "Zardoz? Really?" in capsys.readouterr().out

    dojob = run(movie_night, "--movie", "Zardoz", *extra)
    expected = dict(expected_base, PickMovie=False, StartMovie=None, WatchMovie=None)
    assert dojob.nodestatus == expected
    assert "Zardoz" in str(dojob.nodeexceptions["PickMovie"])


def test_no_act_runs_nothing(movie_night, capfd):
    # Even with the "good" options, no_act only looks: every job whose
    # Check needs a Run first fails, everything above it is blocked.
    assert movie_night.main(["-n", "-v", *GOOD]) == 1
    err = capfd.readouterr().err
    lines = trace(err)
    assert lines, err
    # Only check phases: nothing is Run, so nothing is rechecked either.
    not_checks = [line for line in lines if line[1] != "check"]
    assert not_checks == [], "no_act must not Run (or report a Run of) any job"
    checks = [job for job, *_ in lines]
    assert len(checks) == len(set(checks))  # no retries either

    dojob = run(movie_night, "-n", *GOOD)
    assert dojob.nodestatus == {
        "WatchMovie": None,
        "StartMovie": None,
        "TurnOnTV": False,
        "SitOnCouch": False,
        "DimTheLights": False,  # a RunonlyJob cannot pass without its Run
        "PickMovie": True,  # a pure check, nothing to Run
        "Snacks": None,
        "Popcorn": None,
        "PopcornBowl": False,
        "Pizza": False,
        "FriendsArrive": None,
        "InviteFriends": None,
        "SendInvite[NAME='Wendell Bagg']": False,
        "SendInvite[NAME='Lawyer Cat']": False,
        "SendInvite[NAME='Ada Lovelace']": False,
    }
    assert "DimTheLights" not in dojob.noderesults


# -- the verbose trace and retries ----------------------------------------


def test_verbose_trace_shows_every_failed_try(movie_night, capfd):
    assert movie_night.main(["-v"]) == 1
    err = capfd.readouterr().err
    lines = trace(err)
    failures = recheck_failures(err)

    def count(job):
        return failures.count(job)

    # One failing recheck per try, up to TRIES for jobs that never succeed.
    assert count("TurnOnTV") == movie_night.TurnOnTV.TRIES
    assert count("SitOnCouch") == movie_night.SitOnCouch.TRIES
    # Jobs that eventually succeed fail until their condition is reached.
    assert count("PopcornBowl") == movie_night.PopcornBowl.CYCLES_NEEDED - 1
    assert count("Popcorn") == movie_night.Popcorn.POPS_NEEDED - 1
    assert count("Pizza") == movie_night.Pizza.RINGS_NEEDED - 1
    assert set(failures) == {
        "TurnOnTV",
        "SitOnCouch",
        "PopcornBowl",
        "Popcorn",
        "Pizza",
    }

    messages = [msg for job, phase, result, msg in lines if job == "TurnOnTV" and phase == "recheck"]
    assert messages == ["Remote batteries are dead."] * movie_night.TurnOnTV.TRIES

    # A job is never tried before its dependency succeeded.
    first_popcorn = next(i for i, line in enumerate(lines) if line[0] == "Popcorn")
    bowl_pass = lines.index(("PopcornBowl", "recheck", "pass", None))
    assert bowl_pass < first_popcorn
    # Every job is checked; blocked jobs are never tried.
    tried = {job for job, *_ in lines}
    assert tried == set(DEFAULT_STATUS) - {"StartMovie", "WatchMovie"}


def test_verbose_trace_retries_round_robin(movie_night, capfd):
    """Every ready job gets its k-th try before any job gets its (k+1)-th."""
    assert movie_night.main(["-v"]) == 1
    failures = recheck_failures(capfd.readouterr().err)

    # These four have no dependencies, so they are all ready from the start,
    # and each one fails more than once.
    branches = {"TurnOnTV", "SitOnCouch", "PopcornBowl", "Pizza"}
    position = defaultdict(list)  # job -> indexes of its k-th failure
    for index, job in enumerate(failures):
        if job in branches:
            position[job].append(index)
    assert set(position) == branches
    assert all(len(indexes) >= 2 for indexes in position.values())

    rounds = max(len(indexes) for indexes in position.values())
    for k in range(rounds - 1):
        kth = [ix[k] for ix in position.values() if len(ix) > k]
        next_ = [ix[k + 1] for ix in position.values() if len(ix) > k + 1]
        assert max(kth) < min(next_), (k + 1, failures)


def test_retry_counters_are_per_run(movie_night, capfd):
    # Counters live in global_storage, so a second run in the same process
    # starts from scratch and behaves exactly like the first one.
    assert movie_night.main(["-v"]) == 1
    first = capfd.readouterr().err
    assert movie_night.main(["-v"]) == 1
    second = capfd.readouterr().err
    assert trace(first) == trace(second)
    assert recheck_failures(first)


def test_debug_mode(movie_night, capfd):
    assert movie_night.main(["-d"]) == 1
    err = capfd.readouterr().err
    assert 'TurnOnTV.recheck: fail "Remote batteries are dead."' in err
    assert "Remote batteries are dead." in err


# -- workers ---------------------------------------------------------------


@pytest.mark.parametrize("extra", [[], GOOD, ["--movie", "Zardoz"]])
def test_parallel_workers_same_outcome(movie_night, extra):
    serial = run(movie_night, "-j", "1", *extra)
    parallel = run(movie_night, "-j", "8", *extra)
    assert parallel.nodestatus == serial.nodestatus


# -- dynamic jobs ----------------------------------------------------------


def test_main_is_idempotent(movie_night, capsys):
    assert movie_night.main([]) == 1
    deps = tuple(movie_night.InviteFriends.DEPS)
    assert movie_night.main([]) == 1
    assert movie_night.main(GOOD) == 0
    capsys.readouterr()

    # Calling main() again neither duplicates nor replaces the invite jobs.
    assert movie_night.InviteFriends.DEPS == deps
    assert len(deps) == len(movie_night.FRIENDS)
    for job, friend in zip(deps, movie_night.FRIENDS, strict=True):
        assert job.job is movie_night.SendInvite  # bound jobs, not classes made with type()
        assert (job.NAME, job.EMAIL) == (friend["name"], friend["email"])
    assert [job.__name__ for job in deps] == [
        "SendInvite[NAME='Wendell Bagg']",
        "SendInvite[NAME='Lawyer Cat']",
        "SendInvite[NAME='Ada Lovelace']",
    ]


def test_other_friends_get_their_own_invite_jobs(movie_night):
    bob = {"name": "Bob", "email": "bob@example.com"}
    try:
        dojob = movie_night.plan_movie_night(movie_night.parse_args(GOOD), friends=[bob])
        assert [j.__name__ for j in movie_night.InviteFriends.DEPS] == ["SendInvite[NAME='Bob']"]
        invites = {f"SendInvite[NAME={f['name']!r}]" for f in movie_night.FRIENDS}
        assert dojob.nodestatus == dict.fromkeys(set(ALL_TRUE) - invites | {"SendInvite[NAME='Bob']"}, True)
    finally:
        movie_night.invite_friends(movie_night.FRIENDS)
    assert run(movie_night, *GOOD).nodestatus == ALL_TRUE  # friends restored


# -- as a script -------------------------------------------------------------


@pytest.mark.parametrize("argv, code", [([], 1), (GOOD, 0)])
def test_runs_as_a_script(argv, code):
    proc = subprocess.run(
        [sys.executable, "examples/movie_night.py", *argv],
        cwd=ROOT,
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    assert proc.returncode == code, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last == ("Enjoy the movie!" if code == 0 else "No movie tonight: 2 job(s) failed.")


def test_png_output(movie_night, tmp_path, capsys):
    png = tmp_path / "movie_night.png"
    assert movie_night.main(["--png_output", str(png)]) == 1
    capsys.readouterr()
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), data[:40]
    assert len(data) > 1000
