#!/usr/bin/env python
"""Movie night: a tour of dojob, told as an evening with friends.

Goal: watch a movie with friends. Getting there means a pile of small
steps - turn on the TV, find a seat, make popcorn, get pizza, invite
people, pick a movie - and some of them only work on a second or third
try. Each step is a *Job*: a small class that can

* ``Check`` whether its piece of the world is already as we want it
  (raise an exception if not), and
* ``Run`` to make it so.

dojob runs check -> run -> recheck for every job, in dependency order,
retrying the ones that fail (up to ``TRIES`` times, at least
``RETRY_DELAY`` seconds apart) and never starting a job before all of its
``DEPS`` have succeeded. Jobs are idempotent, so running this script
again is always safe: it just gets closer to the goal.

The dependency graph::

    WatchMovie                      (DummyJob, the root)
    └── StartMovie
        ├── TurnOnTV                fails unless --battery_state charged
        ├── SitOnCouch              fails unless --couch_space
        ├── DimTheLights            (RunonlyJob)
        ├── PickMovie               fails if --movie is a bad movie
        ├── Snacks                  (DummyJob)
        │   ├── Popcorn             "Still popping..." for a while
        │   │   └── PopcornBowl     waits for the dishwasher
        │   └── Pizza               the delivery takes a while
        └── FriendsArrive
            └── InviteFriends       (DummyJob)
                └── SendInvite[NAME='...']  one job per friend: SendInvite.bind(...)

Try it::

    python examples/movie_night.py -v          # no TV, no seat: exit 1
    python examples/movie_night.py -v --battery_state charged --couch_space
    python examples/movie_night.py -n          # no_act: only look around
    python examples/movie_night.py --movie Zardoz
    python examples/movie_night.py --png_output movie_night.png

Everything here is simulated: the "world" lives in ``global_storage``, a
dict shared by all jobs for the duration of one ``checknrun()``, so each
run starts from the same empty world and behaves the same every time.
"""

import argparse
import os
import sys

try:
    import dojob as dojobber  # dojob is a drop-in replacement for DoJobber
except ImportError:  # running from a source checkout without installing dojob
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import dojob as dojobber


# Keep the evening short: retried jobs wait only a few milliseconds.
FAST = 0.05

DEFAULT_MOVIE = "The Princess Bride"
BAD_MOVIES = ("Zardoz", "Plan 9 from Outer Space", "The Room")

# The people we invite; one SendInvite job is bound for each of them.
FRIENDS = (
    {"name": "Wendell Bagg", "email": "bagg@example.com"},
    {"name": "Lawyer Cat", "email": "lawyercat@example.com"},
    {"name": "Ada Lovelace", "email": "ada@example.com"},
)


def world(job):
    """Return the simulated world: a dict inside the run's global storage.

    ``global_storage`` is one dict for the whole run, shared by all jobs,
    so jobs can see what earlier jobs did. Keeping our state in one
    sub-dict avoids name clashes with anybody else using it.
    """
    return job.global_storage.setdefault("movie_night", {})


def bump(job, counter):
    """Add one to ``counter`` in the world and return the new value."""
    state = world(job)
    state[counter] = state.get(counter, 0) + 1
    return state[counter]


# --------------------------------------------------------------------------
# Jobs that fail unless the command line says the problem is solved.
# --------------------------------------------------------------------------


class TurnOnTV(dojobber.Job):
    """Turn on the TV - only possible if the remote has charged batteries."""

    TRIES = 3
    RETRY_DELAY = FAST

    def Check(self, *_, **kwargs):
        if not world(self).get("tv_on"):
            if kwargs.get("battery_state", "dead") != "charged":
                raise RuntimeError("Remote batteries are dead.")
            raise RuntimeError("TV is off.")

    def Run(self, *_, **kwargs):
        # Pressing the button does nothing when the batteries are dead.
        # Run may raise or not, dojob ignores it: the recheck decides.
        if kwargs.get("battery_state", "dead") == "charged":
            world(self)["tv_on"] = True


class SitOnCouch(dojobber.Job):
    """Find a seat - only possible if there is space on the couch."""

    TRIES = 3
    RETRY_DELAY = FAST

    def Check(self, *_, **_kwargs):
        if not world(self).get("seated"):
            raise RuntimeError("No space on couch.")

    def Run(self, *_, **kwargs):
        if kwargs.get("couch_space", False):
            world(self)["seated"] = True


class PickMovie(dojobber.Job):
    """Make sure the movie is worth watching.

    A job that only checks: no Run can fix bad taste, so one try is
    enough (TRIES = 1). Note that Check may record things too: later jobs
    read the chosen movie from the world.
    """

    TRIES = 1

    def Check(self, *_, **kwargs):
        movie = kwargs.get("movie", DEFAULT_MOVIE)
        if movie.casefold() in {bad.casefold() for bad in BAD_MOVIES}:
            raise ValueError(f"{movie}? Really?")
        world(self)["movie"] = movie

    def Run(self, *_, **_kwargs):
        pass  # Nothing we can do about it.


# --------------------------------------------------------------------------
# Jobs that need a few tries: Run starts something that takes time, the
# recheck fails until it is done, and a later try succeeds. Each try is
# counted in global_storage, so this is deterministic and starts over
# on every run.
# --------------------------------------------------------------------------


class PopcornBowl(dojobber.Job):
    """Get a clean bowl - the dishwasher needs a few more minutes."""

    CYCLES_NEEDED = 3  # the recheck passes on the 3rd try
    TRIES = 5
    RETRY_DELAY = FAST

    def Check(self, *_, **_kwargs):
        if world(self).get("dishwasher_cycles", 0) < self.CYCLES_NEEDED:
            raise RuntimeError("Dishwasher cycle not done yet.")

    def Run(self, *_, **_kwargs):
        bump(self, "dishwasher_cycles")  # wait a bit longer


class Popcorn(dojobber.Job):
    """Pop the popcorn, which needs the bowl first."""

    DEPS = (PopcornBowl,)
    POPS_NEEDED = 3  # the recheck passes on the 3rd try
    TRIES = 5
    RETRY_DELAY = FAST

    def Check(self, *_, **_kwargs):
        if world(self).get("pops", 0) < self.POPS_NEEDED:
            raise RuntimeError("Still popping...")

    def Run(self, *_, **_kwargs):
        bump(self, "pops")


class Pizza(dojobber.Job):
    """Order a pizza and wait for the delivery."""

    RINGS_NEEDED = 3  # the recheck passes on the 3rd try
    TRIES = 4
    RETRY_DELAY = FAST

    def Check(self, *_, **_kwargs):
        if world(self).get("doorbell_rings", 0) < self.RINGS_NEEDED:
            raise RuntimeError("Giordano's did not arrive yet.")

    def Run(self, *_, **_kwargs):
        bump(self, "doorbell_rings")


class Snacks(dojobber.DummyJob):
    """A DummyJob only groups its dependencies: it has no Check nor Run."""

    DEPS = (Popcorn, Pizza)


# --------------------------------------------------------------------------
# A RunonlyJob has no Check: its Run happens on every run, and the job
# passes if Run does not raise. (In no_act mode it cannot pass, since
# nothing is Run.) Prefer a real Check when you can write one.
# --------------------------------------------------------------------------


class DimTheLights(dojobber.RunonlyJob):
    """Dim the lights; it is harmless to do it again."""

    def Run(self, *_, **_kwargs):
        world(self)["lights"] = "dimmed"
        return "dimmed"  # becomes this job's entry in noderesults


# --------------------------------------------------------------------------
# Jobs made at runtime: one SendInvite per friend, bound to the friend's
# name and email with SendInvite.bind(...), added to the DEPS of
# InviteFriends before the graph is configured.
# --------------------------------------------------------------------------


class SendInvite(dojobber.Job):
    """Invite one friend; bind NAME and EMAIL: ``SendInvite.bind(NAME=..., EMAIL=...)``.

    Inside Check and Run, ``self.NAME`` and ``self.EMAIL`` are the bound
    values. The job's name shows the NAME only (BIND_NAME), e.g.
    ``SendInvite[NAME='Wendell Bagg']``.
    """

    BIND_NAME = ("NAME",)

    def Check(self, *_, **_kwargs):
        if self.EMAIL not in world(self).get("invited", ()):
            raise RuntimeError(f"{self.NAME} is not invited yet.")

    def Run(self, *_, **_kwargs):
        world(self).setdefault("invited", set()).add(self.EMAIL)


class InviteFriends(dojobber.DummyJob):
    """Depends on one SendInvite job per friend, set by invite_friends()."""

    DEPS = ()


class FriendsArrive(dojobber.Job):
    """Everybody we invited rings the doorbell."""

    DEPS = (InviteFriends,)

    def Check(self, *_, **_kwargs):
        state = world(self)
        if "arrived" not in state or state["arrived"] != state.get("invited"):
            raise RuntimeError("Still waiting for friends.")

    def Run(self, *_, **_kwargs):
        state = world(self)
        state["arrived"] = set(state.get("invited", ()))


def invite_friends(friends):
    """Make InviteFriends depend on one SendInvite job per friend.

    ``SendInvite.bind(...)`` makes a job, not a class: no ``type()``, no
    made-up class names. Binding the same values again gives the same job,
    so calling this again with the same friends leaves the graph unchanged.
    """
    InviteFriends.DEPS = tuple(SendInvite.bind(NAME=friend["name"], EMAIL=friend["email"]) for friend in friends)


# The default guests are invited at import, so that `dojob run
# examples/movie_night.py:WatchMovie` sees the whole graph too.
invite_friends(FRIENDS)


# --------------------------------------------------------------------------
# The top of the graph.
# --------------------------------------------------------------------------


class StartMovie(dojobber.Job):
    """Press play - once everything else is ready."""

    DEPS = (TurnOnTV, SitOnCouch, DimTheLights, PickMovie, Snacks, FriendsArrive)

    def Check(self, *_, **kwargs):
        if world(self).get("playing") != kwargs.get("movie", DEFAULT_MOVIE):
            raise RuntimeError("Nothing is playing.")

    def Run(self, *_, **kwargs):
        world(self)["playing"] = kwargs.get("movie", DEFAULT_MOVIE)


class WatchMovie(dojobber.DummyJob):
    """The root job: the evening is a success when this one succeeds."""

    DEPS = (StartMovie,)


# --------------------------------------------------------------------------
# Command line.
# --------------------------------------------------------------------------


def parse_args(argv=None):
    """Parse the command line (``argv`` defaults to ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(description="Plan a movie night with dojob.")
    parser.add_argument(
        "-n",
        "--no_act",
        action="store_true",
        help="only Check, never Run: show what would be done",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="trace each check/run/recheck on stderr",
    )
    parser.add_argument(
        "-d",
        "--debug",
        action="store_true",
        help="like --verbose, plus tracebacks of failures",
    )
    parser.add_argument(
        "-j",
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="run up to N jobs at the same time (default 1)",
    )
    parser.add_argument(
        "--movie",
        default=DEFAULT_MOVIE,
        help=f"movie to watch (default {DEFAULT_MOVIE!r})",
    )
    parser.add_argument(
        "--battery_state",
        choices=("dead", "charged"),
        default="dead",
        help="state of the TV remote batteries (default dead)",
    )
    parser.add_argument("--couch_space", action="store_true", help="there is room on the couch")
    parser.add_argument(
        "--png_output",
        metavar="FILE",
        help="write the job graph, coloured by status, as PNG",
    )
    return parser.parse_args(argv)


def plan_movie_night(args, friends=FRIENDS):
    """Configure and run the jobs; return the finished DoJobber."""
    invite_friends(friends)  # jobs created at runtime must exist first

    dojob = dojobber.DoJobber()
    dojob.configure(
        WatchMovie,
        no_act=args.no_act,
        verbose=args.verbose,
        debug=args.debug,
        workers=args.workers,
        # Jobs without their own TRIES / RETRY_DELAY get these.
        default_tries=3,
        default_retry_delay=FAST,
    )
    # Every Check and Run receives the options as keyword arguments.
    dojob.set_args(**vars(args))
    dojob.checknrun()

    if args.png_output:
        with open(args.png_output, "wb") as png:
            dojob.write_graph(png, fmt="png")
    return dojob


def summary(dojob):
    """Return a human summary of the run, one line per job."""
    words = {True: "done", False: "FAILED", None: "blocked"}
    lines = []
    for name, status in sorted(dojob.nodestatus.items()):
        line = f"  {name:<20} {words[status]}"
        if status is False and name in dojob.nodeexceptions:
            line += f": {dojob.nodeexceptions[name]}"
        lines.append(line)
    if dojob.success():
        lines.append("Enjoy the movie!")
    else:
        failed = sum(1 for s in dojob.nodestatus.values() if s is False)
        lines.append(f"No movie tonight: {failed} job(s) failed.")
    return "\n".join(lines)


def main(argv=None):
    """Run movie night; return 0 on complete success, else 1."""
    args = parse_args(argv)
    dojob = plan_movie_night(args)
    print(summary(dojob))
    return 0 if dojob.success() else 1


if __name__ == "__main__":
    sys.exit(main())
