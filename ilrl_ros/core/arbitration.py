"""Who drives the robot: one command source at a time, by priority and timeout (no ROS).

In the manner of twist_mux: each source has a priority and a timeout; of the sources whose
last message arrived within their timeout (fresh), the one of highest priority drives, and
only its messages reach the robot. Locks override them: the e-stop (level above every
source) and the episode manager's safety hold (level of its own source) make every command of
a source below their level a zero in its place, until they are released.

``Arbiter`` is the decision alone: the ``command_arbiter`` node feeds it arrivals (source,
clock time, the stamp of the observation a message answers), lock changes and clock ticks,
and publishes what it returns. Every arriving message gets one decision
(``FORWARD``, ``ZERO`` in its place, ``IGNORED`` while a higher source is fresh, or
``DUPLICATE``: it answers an observation whose answer already went out), so a message is
output at most once; a zero is also output, unasked, when a lock engages and when the driving
source times out with no other fresh. A stamped message whose stamp equals the last output's
is a second answer to one observation: it is not output, so a lock-step robot gets exactly
one command per observation even while two drivers answer it.
"""

from dataclasses import dataclass, field
import math
from typing import Any, Optional

FORWARD, ZERO, IGNORED, DUPLICATE = 'forward', 'zero', 'ignored', 'duplicate'
# The level of a lock that holds every source (the e-stop).
ALL = math.inf


@dataclass(frozen=True)
class Source:
    """One command source: its name, its priority (higher wins) and its timeout."""

    name: str
    priority: int
    timeout_s: float

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f'a command source needs a name, got {self.name!r}')
        if isinstance(self.priority, bool) or not isinstance(self.priority, int):
            raise ValueError(f'source {self.name!r}: priority must be a whole number, got '
                             f'{self.priority!r}')
        if isinstance(self.timeout_s, bool) or not isinstance(self.timeout_s, (int, float)) \
                or not math.isfinite(self.timeout_s) or not 0.0 < self.timeout_s <= 3600.0:
            raise ValueError(f'source {self.name!r}: timeout_s must be a number of seconds '
                             f'from 0 (excluded) to 3600, got {self.timeout_s!r}')


def sources_from_lists(names, priorities, timeouts_s) -> tuple:
    """Sources from parallel lists (the node's parameters), checked.

    Names must be distinct, priorities distinct (two drivers of equal rank would race),
    and the lists of equal length.
    """
    names, priorities, timeouts_s = list(names), list(priorities), list(timeouts_s)
    if not names:
        raise ValueError('the arbiter needs at least one command source')
    if not len(names) == len(priorities) == len(timeouts_s):
        raise ValueError(f'one priority and one timeout per source expected: {len(names)} '
                         f'names, {len(priorities)} priorities, {len(timeouts_s)} timeouts')
    sources = tuple(Source(n, p, t) for n, p, t in zip(names, priorities, timeouts_s))
    for kind, values in (('names', names), ('priorities', priorities)):
        twice = sorted({str(v) for v in values if values.count(v) > 1})
        if twice:
            raise ValueError(f'command sources need distinct {kind}; {", ".join(twice)} '
                             f'given more than once')
    return sources


@dataclass(frozen=True)
class Output:
    """A command to publish: the source's own message, or a zero in its place."""

    kind: str
    """FORWARD (``message`` unchanged) or ZERO."""
    source: str
    """The source whose message this is or replaces; for a lock's zero, the lock's name."""
    stamp_ns: Optional[int]
    """The stamp a zero carries (that of the message it replaces, else the newest seen);
    None: unstamped commands, or nothing seen yet (the node stamps with its clock)."""
    message: Any = None
    """FORWARD: the message to publish; ZERO: the message it replaces (None: unasked)."""


@dataclass(frozen=True)
class Event:
    """Something an operator should hear of: ``changed`` (the active source) or ``warning``."""

    kind: str
    text: str
    active: str = ''


@dataclass
class _Latest:
    stamp_ns: Optional[int]
    message: Any
    arrived_ns: int
    zero: bool = False
    done: bool = False
    """Output already (forwarded, or a zero in its place), or a duplicate: never again."""


@dataclass
class Counts:
    """Per source: messages received, forwarded, replaced by zero, ignored, duplicates."""

    received: int = 0
    forwarded: int = 0
    zeroed: int = 0
    ignored: int = 0
    duplicates: int = 0
    refused: int = 0


@dataclass
class Arbiter:
    """The decision of which source drives; see the module docstring.

    Times are integer nanoseconds of one monotonic clock; should it step back, every age is
    kept as it was (the arrivals move with it). ``events`` collects what happened since the
    caller last took them (``take_events``).
    """

    sources: tuple
    warn_period_s: float = 5.0
    zero_on_timeout: bool = True
    """Zero when the driving source times out and no other is fresh (off for a lock-step
    robot, which steps on every command and does not move without one)."""
    active: str = ''
    """The source that drives (the last output's), a lock's name, or '' (nothing drives)."""
    locks: dict = field(default_factory=dict)
    events: list = field(default_factory=list)

    def __post_init__(self):
        self.sources = tuple(sorted(self.sources, key=lambda s: -s.priority))
        sources_from_lists([s.name for s in self.sources], [s.priority for s in self.sources],
                           [s.timeout_s for s in self.sources])
        self._by_name = {s.name: s for s in self.sources}
        self.counts = {s.name: Counts() for s in self.sources}
        self._latest = {}
        self._released = set()
        self._last_output_stamp = None
        # Whether the robot's last command was zero: a lock engaging then has nothing to stop.
        # Unknown at start (the robot may move from before): the first lock commands zero.
        self._last_zero = False
        self.newest_stamp_ns = None
        self._now = None
        self._warned = {}
        self.outputs = 0
        self.zeros = 0
        self.warnings = 0

    # Time ---------------------------------------------------------------------------------

    def _clock(self, now_ns: int) -> None:
        if self._now is not None and now_ns < self._now:
            shift = now_ns - self._now
            for latest in self._latest.values():
                latest.arrived_ns += shift
            self._warned = {k: t + shift for k, t in self._warned.items()}
        self._now = now_ns

    def fresh(self, name: str, now_ns: int) -> bool:
        """Whether ``name``'s last message arrived within its timeout (and it did not yield)."""
        latest = self._latest.get(name)
        if latest is None or name in self._released:
            return False
        return now_ns - latest.arrived_ns <= self._by_name[name].timeout_s * 1e9

    def winner(self, now_ns: int) -> Optional[Source]:
        """The fresh source of highest priority, or None."""
        self._clock(now_ns)
        return next((s for s in self.sources if self.fresh(s.name, now_ns)), None)

    def _lock_over(self, source: Source) -> Optional[str]:
        """The engaged lock that holds ``source`` (its level is above its priority), if any."""
        held = [(level, name) for name, level in self.locks.items() if level > source.priority]
        return max(held)[1] if held else None

    # Inputs -------------------------------------------------------------------------------

    def source(self, name: str) -> Source:
        try:
            return self._by_name[name]
        except KeyError:
            raise ValueError(f'unknown command source {name!r}; the arbiter has '
                             f'{", ".join(self._by_name)}') from None

    def receive(self, name: str, now_ns: int, stamp_ns: Optional[int] = None,
                message: Any = None, zero: bool = False) -> tuple:
        """A message from ``name`` arrived; returns its decision and the outputs (0 or 1).

        ``stamp_ns``: the stamp of the observation it answers (None: unstamped commands);
        ``zero``: whether it commands zero.
        """
        source = self.source(name)
        self._clock(now_ns)
        counts = self.counts[name]
        counts.received += 1
        latest = _Latest(stamp_ns, message, now_ns, bool(zero))
        self._latest[name] = latest
        self._released.discard(name)
        if stamp_ns is not None:
            self.newest_stamp_ns = stamp_ns if self.newest_stamp_ns is None \
                else max(self.newest_stamp_ns, stamp_ns)
        winner = self.winner(now_ns)
        if winner.name != name:
            # Kept: it drives if the winner times out before this source's next message.
            counts.ignored += 1
            self._warn_ignored(name, winner.name, now_ns)
            return IGNORED, []
        outputs = self._output(source, latest)
        if not outputs:
            return DUPLICATE, []
        return outputs[0].kind, outputs

    def refuse(self, name: str, now_ns: int) -> list:
        """A message from ``name`` could not be read: it stops driving; returns the outputs.

        A source that sends what cannot be read no longer counts as fresh (until its next
        good message); if it drove, the next fresh source takes over, or zero.
        """
        self.source(name)
        self._clock(now_ns)
        self.counts[name].refused += 1
        return self.release(name, now_ns)

    def release(self, name: str, now_ns: int) -> list:
        """``name`` yields (it said it is done): it is no longer fresh; returns the outputs."""
        self.source(name)
        self._clock(now_ns)
        self._released.add(name)
        return self._reselect(now_ns)

    def engage(self, lock: str, level: float, now_ns: int) -> list:
        """A lock engages: sources below ``level`` are held at zero; returns the outputs.

        A zero goes out at once, unless the robot's last command already was zero or the
        driver ranks at or above the lock (the episode manager's reset controller under its
        own hold).
        """
        self._clock(now_ns)
        if lock in self.locks:
            return []
        self.locks[lock] = level
        driver = self._by_name.get(self.active)
        if driver is not None and driver.priority >= level and self.fresh(driver.name, now_ns):
            return []
        top = max((lvl, name) for name, lvl in self.locks.items())[1]
        self._set_active(top, f'{top} engaged: commanding zero')
        if self._last_zero:
            return []
        return [self._zero(lock, self.newest_stamp_ns)]

    def disengage(self, lock: str, now_ns: int) -> list:
        """A lock is released; the best fresh source drives again; returns the outputs."""
        self._clock(now_ns)
        if self.locks.pop(lock, None) is None:
            return []
        return self._reselect(now_ns)

    def tick(self, now_ns: int) -> list:
        """The clock moved on: a driver that timed out hands over; returns the outputs."""
        self._clock(now_ns)
        return self._reselect(now_ns)

    def take_events(self) -> list:
        events, self.events = self.events, []
        return events

    # Decisions ----------------------------------------------------------------------------

    def _reselect(self, now_ns: int) -> list:
        driver = self._by_name.get(self.active)
        if driver is not None and self.fresh(driver.name, now_ns):
            return []
        # Who takes over is judged when the driver timed out, not at this later tick: a
        # command that came just after the driver's last one is as fresh as it was, and a
        # lock-step robot waits on it (its source sends nothing more until it is answered).
        at = now_ns
        if driver is not None and driver.name not in self._released:
            at = min(now_ns, self._latest[driver.name].arrived_ns
                     + int(driver.timeout_s * 1e9))
        winner = next((s for s in self.sources if s is not driver and self.fresh(s.name, at)),
                      None)
        if winner is not None:
            latest = self._latest[winner.name]
            if driver is not None and latest.arrived_ns <= self._latest[driver.name].arrived_ns:
                # The driver commanded after it: it answers an observation already answered
                # (before a reset, say), so it never goes.
                latest.done = True
            if latest.done:
                lock = self._lock_over(winner)
                self._set_active(lock or winner.name, f'{lock} holds the robot at zero'
                                 if lock else f'{winner.name} drives')
                return []
            # Its newest message waited while a higher source was fresh: it goes now, so a
            # lock-step robot gets the observation it waits on answered.
            return self._output(winner, latest)
        held = max(((level, name) for name, level in self.locks.items()), default=None)
        if held is not None:
            self._set_active(held[1], f'{held[1]} holds the robot at zero')
            return []
        if driver is None:
            self._set_active('', 'nothing drives')
            return []
        zero = self.zero_on_timeout and not self._last_zero
        self._set_active('', f'{driver.name} timed out and no other source is fresh'
                         + ('; commanding zero' if zero else ''))
        return [self._zero(driver.name, self.newest_stamp_ns)] if zero else []

    def _output(self, source: Source, latest: _Latest) -> list:
        latest.done = True
        lock = self._lock_over(source)
        if latest.stamp_ns is not None and latest.stamp_ns == self._last_output_stamp:
            self.counts[source.name].duplicates += 1
            self._set_active(lock or source.name, f'{lock} holds the robot at zero' if lock
                             else f'{source.name} drives')
            return []
        if lock is not None:
            self.counts[source.name].zeroed += 1
            self._set_active(lock, f'{lock} holds the robot at zero')
            return [self._zero(source.name, latest.stamp_ns, latest.message)]
        self.counts[source.name].forwarded += 1
        self._set_active(source.name, f'{source.name} drives')
        self._last_output_stamp = latest.stamp_ns
        self._last_zero = latest.zero
        self.outputs += 1
        return [Output(FORWARD, source.name, latest.stamp_ns, latest.message)]

    def _zero(self, source: str, stamp_ns: Optional[int], replaces: Any = None) -> Output:
        if stamp_ns is None:
            stamp_ns = self.newest_stamp_ns
        self._last_output_stamp = stamp_ns
        self._last_zero = True
        self.outputs += 1
        self.zeros += 1
        return Output(ZERO, source, stamp_ns, replaces)

    def _set_active(self, name: str, text: str) -> None:
        if name != self.active:
            self.active = name
            self.events.append(Event('changed', text, name))

    def _warn_ignored(self, name: str, driver: str, now_ns: int) -> None:
        # Throttled per pair: a second driver is worth one line every warn_period_s.
        key = (name, driver)
        last = self._warned.get(key)
        if last is not None and now_ns - last < self.warn_period_s * 1e9:
            return
        self._warned[key] = now_ns
        self.warnings += 1
        self.events.append(Event('warning', f"two drivers: {driver} drives, so {name}'s "
                                 f'commands are ignored ({self.counts[name].ignored} so far)',
                                 driver))

    def status(self) -> dict:
        """Active source, locks, and per-source counts, for ``~/status``."""
        return {'active': self.active or 'none', 'locks': sorted(self.locks),
                'outputs': self.outputs, 'zeros': self.zeros, 'warnings': self.warnings,
                'ignored': sum(c.ignored for c in self.counts.values()),
                'sources': {name: vars(c).copy() for name, c in self.counts.items()}}
