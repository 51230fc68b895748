#!/usr/bin/env python
"""DoJobber's movie-night example, as a DoJobber 0.6 script: it imports ``dojobber`` only.

Written for the contract in tests/test_dojobber_contract.py: under DoJobber 0.6.3,
``dojobber_movie_example.py -v | grep 'recheck: fail'`` prints exactly the trace
DoJobber's README publishes for its ``tests/dojobber_example.py``; under dojob it
runs unchanged with ``python -m dojob.dojobber dojobber_movie_example.py -v``.
"""

import argparse
import sys

from dojobber import DoJobber, DummyJob, Job, RunonlyJob


def world(job):
    """The simulated evening: one dict in the run's global storage."""
    return job.global_storage.setdefault("movie", {})


class Counted(Job):
    """Check fails until Run was called NEEDED times, with MESSAGE; no Run succeeds when BLOCKED is set."""

    NEEDED = 1
    MESSAGE = "not yet"
    UNLESS = None  # the option that makes Run work at all

    def Check(self, *args, **kwargs):
        if world(self).get(type(self).__name__, 0) < self.NEEDED:
            raise RuntimeError(self.MESSAGE)

    def Run(self, *args, **kwargs):
        if self.UNLESS is not None and not kwargs.get(self.UNLESS):
            return
        state = world(self)
        state[type(self).__name__] = state.get(type(self).__name__, 0) + 1


class FindTVRemote(Counted):
    MESSAGE = "Where is the remote?"


class TurnOnTV(Counted):
    DEPS = (FindTVRemote,)
    MESSAGE = "Remote batteries are dead."
    UNLESS = "batteries"


class SitOnCouch(Counted):
    MESSAGE = "No space on couch."
    UNLESS = "couch"


class PopcornBowl(Counted):
    TRIES = 6
    NEEDED = 6
    MESSAGE = "Dishwasher cycle not done yet."


class Popcorn(Counted):
    DEPS = (PopcornBowl,)
    NEEDED = 3
    MESSAGE = "Still popping..."


class Pizza(Counted):
    NEEDED = 3
    MESSAGE = "Giordano's did not arrive yet."


class Snacks(DummyJob):
    DEPS = (Popcorn, Pizza)


class DimLights(RunonlyJob):
    def Run(self, *args, **kwargs):
        world(self)["lights"] = "dim"
        return "dim"


class SendInvite(Job):
    EMAIL = None
    NAME = None

    def Check(self, *args, **kwargs):
        if self.EMAIL not in world(self).get("invited", ()):
            raise RuntimeError(f"{self.NAME} is not invited.")

    def Run(self, *args, **kwargs):
        world(self).setdefault("invited", []).append(self.EMAIL)


class InviteFriends(DummyJob):
    DEPS = []


class FriendsArrive(Job):
    DEPS = (InviteFriends,)

    def Check(self, *args, **kwargs):
        pass

    def Run(self, *args, **kwargs):
        pass


class WatchMovie(Job):
    DEPS = (TurnOnTV, SitOnCouch, Snacks, DimLights, FriendsArrive)

    def Check(self, *args, **kwargs):
        if not world(self).get("playing"):
            raise RuntimeError("Nothing is playing.")

    def Run(self, *args, **kwargs):
        world(self)["playing"] = kwargs.get("movie")


def invite_friends(people):
    """DoJobber README's dynamic jobs: one SendInvite subclass per person."""
    for person in people:
        job = type("Invite{}".format(person["name"].replace(" ", "")), (SendInvite,), {})
        job.EMAIL = person["email"]
        job.NAME = person["name"]
        InviteFriends.DEPS.append(job)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("-d", "--debug", action="store_true")
    parser.add_argument("-n", "--no_act", action="store_true")
    parser.add_argument("--batteries", action="store_true", help="the remote works")
    parser.add_argument("--couch", action="store_true", help="there is room on the couch")
    parser.add_argument("--movie", default="Zardoz")
    args = parser.parse_args()
    invite_friends([
        {"name": "Wendell Bagg", "email": "bagg@example.com"},
        {"name": "Lawyer Cat", "email": "lawyercat@example.com"},
    ])  # fmt: skip
    dojob = DoJobber()
    dojob.configure(WatchMovie, verbose=args.verbose, debug=args.debug, no_act=args.no_act, default_retry_delay=0.01)
    dojob.set_args(**vars(args))
    dojob.checknrun()
    for name, status in sorted(dojob.nodestatus.items()):
        print(f"{name}: {status}")
    return 0 if dojob.success() else 1


if __name__ == "__main__":
    sys.exit(main())
