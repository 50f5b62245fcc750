"""Transitions of a running loop, paired from the separate streams that describe it.

Over ROS 2 one step of the loop arrives in pieces, each on its own topic and in no fixed
order: the observation (from the sensors, assembled by the spec), the command that answered
it, the reward (the reward monitor, by stamp), and the episode manager's verdict on the
step (``episode/step``: whether the episode went on, terminated or was cut short).
``TransitionBuilder`` holds the pieces until a step is complete and hands out
``Transition`` records (s, a, r, s', terminated, truncated, stamps). ``RosEnv`` and the
transition publisher node both use it, so a learner in the loop and a learner reading the
``transitions`` topic see the same transitions.
"""

from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class Transition:
    """One step (s, a, r, s') of a running loop, with what ended it and when it happened."""

    obs: np.ndarray
    action: np.ndarray
    reward: float
    next_obs: np.ndarray
    terminated: bool
    truncated: bool
    stamp_ns: int
    """Stamp of ``obs``."""
    next_stamp_ns: int
    """Stamp of ``next_obs``."""
    episode: int
    intervened: bool = False
    """Whether a person drove this step (teleop took over from the policy)."""
    outcome: Optional[str] = None
    """The episode's outcome when this step ended it."""

    def __post_init__(self):
        for name in ('obs', 'action', 'next_obs'):
            value = getattr(self, name)
            if value.ndim != 1 or not np.all(np.isfinite(value)):
                raise ValueError(f'transition {name} must be a finite vector, got {value!r}')
        if self.obs.shape != self.next_obs.shape:
            raise ValueError(f'obs has {self.obs.size} values, next_obs {self.next_obs.size}')
        if not np.isfinite(self.reward):
            raise ValueError(f'transition reward must be finite, got {self.reward!r}')


@dataclass
class _Step:
    """The episode manager's verdict on one step, waiting for its other pieces."""

    episode: int
    stamp_ns: int
    previous_stamp_ns: int
    start_ns: int
    outcome: Optional[str]
    terminated: bool
    truncated: bool


class TransitionBuilder:
    """Pairs observations, commands, rewards and step verdicts into transitions.

    - ``observation(stamp_ns, vector)``: an assembled observation (the policy's input);
    - ``command(action, answers_ns)``: a command and the stamp of the observation it
      answers (the newest observation seen, for unstamped commands);
    - ``mark_intervened(answers_ns)``: the command answering that observation was a
      person's (the actor says so on its intervention topic);
    - ``reward(stamp_ns, reward, episode_start_ns)``: the reward monitor's r for the step
      that ended at ``stamp_ns``, in the episode that started at ``episode_start_ns``;
    - ``step(...)``: the episode manager's verdict on the step ending at ``stamp_ns``.

    ``poll()`` returns the transitions completed since the last call, in time order. The
    action of the step from s to s' is the last command that answered s; when none did (the
    actor missed a tick) the robot kept the one before, and so does the transition. Pieces
    of steps that never complete are dropped once ``horizon`` newer observations have
    arrived, and counted in ``lost``.
    """

    def __init__(self, action_size: int, horizon: int = 2000, action_history: int = 0):
        self.horizon = int(horizon)
        # The spec's observation.action_history: the policy's input is the observation
        # fields and the last k commands of the episode (zeros at its start).
        self._history_shape = (int(action_history), int(action_size))
        self._histories = {}
        self._observations = OrderedDict()   # stamp -> vector
        self._answers = OrderedDict()        # observation stamp -> action
        self._intervened = OrderedDict()     # observation stamps a person answered
        self._rewards = {}                   # (stamp, episode start) -> reward
        self._pending = OrderedDict()        # stamp -> _Step
        # Before any command: what a robot does with none (nothing, zero).
        self._in_force = np.zeros(action_size, dtype=np.float32)
        self.lost = 0
        self.completed = 0

    # ---------------------------------------------------------------- pieces

    def newest_stamp_ns(self) -> int:
        return next(reversed(self._observations), -1)

    def stamps(self) -> list:
        """Stamps of the observations held, oldest first."""
        return list(self._observations)

    def start_observation(self, stamp_ns: int):
        """The policy input of an episode's first observation (stamped ``stamp_ns``).

        Its fields, then an empty action history; None if it has not arrived (or is gone).
        """
        fields = self._observations.get(stamp_ns)
        if fields is None:
            return None
        return np.concatenate([fields, np.zeros(self._history_shape, np.float32).ravel()])

    def observation(self, stamp_ns: int, vector: np.ndarray) -> None:
        self._observations[int(stamp_ns)] = np.asarray(vector, dtype=np.float32)
        self._observations.move_to_end(int(stamp_ns))
        while len(self._observations) > self.horizon:
            self._observations.popitem(last=False)

    def command(self, action: np.ndarray, answers_ns: int = None) -> None:
        stamp = self.newest_stamp_ns() if answers_ns is None else int(answers_ns)
        self._answers[stamp] = np.asarray(action, dtype=np.float32).copy()
        self._answers.move_to_end(stamp)
        while len(self._answers) > self.horizon:
            self._answers.popitem(last=False)

    def mark_intervened(self, answers_ns: int) -> None:
        self._intervened[int(answers_ns)] = True
        while len(self._intervened) > self.horizon:
            self._intervened.popitem(last=False)

    def reward(self, stamp_ns: int, reward: float, episode_start_ns: int) -> None:
        # A step first scored before the reward monitor learnt of the episode's start is
        # scored again; the key keeps the two apart.
        self._rewards[(int(stamp_ns), int(episode_start_ns))] = float(reward)
        if len(self._rewards) > 2 * self.horizon:
            for key in list(self._rewards)[:len(self._rewards) - self.horizon]:
                del self._rewards[key]

    def step(self, episode: int, stamp_ns: int, previous_stamp_ns: int, start_ns: int,
             outcome: Optional[str], terminated: bool, truncated: bool) -> None:
        self._pending[int(stamp_ns)] = _Step(int(episode), int(stamp_ns),
                                             int(previous_stamp_ns), int(start_ns), outcome,
                                             bool(terminated), bool(truncated))

    # ---------------------------------------------------------------- pairing

    def _action_for(self, stamp_ns: int) -> tuple:
        """(command in force from observation ``stamp_ns`` on, whether a person sent it).

        The newest answer to that observation or to one before it: the robot keeps a command
        until a new one comes.
        """
        for stamp in reversed(self._answers):
            if stamp <= stamp_ns:
                return self._answers[stamp], stamp in self._intervened
        return self._in_force, False

    def poll(self) -> list:
        """Transitions completed since the last call, in time order within each episode.

        A step waits for the steps before it in its episode, so a learner sees each
        episode's steps in order whatever order their pieces came in.
        """
        out = []
        oldest_kept = next(iter(self._observations), None)
        blocked = set()
        for stamp in sorted(self._pending):
            step = self._pending[stamp]
            obs = self._observations.get(step.previous_stamp_ns)
            next_obs = self._observations.get(step.stamp_ns)
            reward = self._rewards.get((step.stamp_ns, step.start_ns))
            if obs is None or next_obs is None or reward is None or step.episode in blocked:
                if oldest_kept is not None and step.previous_stamp_ns < oldest_kept:
                    # Its observation is gone for good: it can never complete.
                    del self._pending[stamp]
                    self.lost += 1
                else:
                    blocked.add(step.episode)
                continue
            del self._pending[stamp]
            action, intervened = self._action_for(step.previous_stamp_ns)
            obs, next_obs = self._with_history(step, obs, next_obs, action)
            out.append(Transition(obs=obs, action=action, reward=reward, next_obs=next_obs,
                                  terminated=step.terminated, truncated=step.truncated,
                                  stamp_ns=step.previous_stamp_ns,
                                  next_stamp_ns=step.stamp_ns, episode=step.episode,
                                  intervened=intervened, outcome=step.outcome))
            self.completed += 1
        return out

    def _with_history(self, step: _Step, obs, next_obs, action) -> tuple:
        """(s, s') as the policy saw them: each followed by the commands sent before it."""
        if not self._history_shape[0]:
            return obs, next_obs
        history = self._histories.setdefault(step.episode,
                                             np.zeros(self._history_shape, np.float32))
        before = np.concatenate([obs, history.ravel()])
        history[:-1] = history[1:]
        history[-1] = action
        after = np.concatenate([next_obs, history.ravel()])
        if step.terminated or step.truncated:
            del self._histories[step.episode]
        return before, after

    def waiting_for(self, stamp_ns: int) -> str:
        """What the step ending at ``stamp_ns`` still lacks, in words (for timeouts)."""
        step = self._pending.get(int(stamp_ns))
        if step is None:
            return "the episode manager's verdict (episode/step)"
        missing = []
        if step.previous_stamp_ns not in self._observations:
            missing.append(f'the observation stamped {step.previous_stamp_ns}')
        if step.stamp_ns not in self._observations:
            missing.append(f'the observation stamped {step.stamp_ns}')
        if (step.stamp_ns, step.start_ns) not in self._rewards:
            missing.append('its reward (reward/terms)')
        return ', '.join(missing) or 'nothing'
