"""Reach a point with a planar two-link arm: inverse kinematics, then a PD torque.

The expert for gymnasium's Reacher: the joint angles that put the fingertip on the target
(the elbow bent one way, ``elbow_sign``, unless only the other is in range), then efforts
that drive the joints there and damp their speed. A fixed elbow side keeps the expert a
continuous function of the state, which a cloned policy can learn: choosing the side nearer
the present elbow angle flips it for arms that start straight, as Reacher's do.
"""

from dataclasses import dataclass
import math

import numpy as np


def wrap_angle(angle: float) -> float:
    """``angle`` in [-pi, pi)."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


def two_link_ik(x: float, y: float, link0: float, link1: float, elbow_hint: float = 0.0,
                elbow_limit: float = math.pi) -> tuple:
    """Joint angles (shoulder, elbow) that put the tip of the arm nearest to (x, y).

    A point beyond reach (or too close to the base) gets the arm stretched (or folded)
    toward it. Of the two elbow solutions, the one within ``elbow_limit`` nearest to
    ``elbow_hint`` is chosen.
    """
    r2 = x * x + y * y
    cos_elbow = (r2 - link0 ** 2 - link1 ** 2) / (2.0 * link0 * link1)
    elbow = math.acos(min(1.0, max(-1.0, cos_elbow)))
    candidates = [e for e in (elbow, -elbow) if abs(e) <= elbow_limit] or [
        math.copysign(elbow_limit, elbow_hint or 1.0)]
    elbow = min(candidates, key=lambda e: abs(e - elbow_hint))
    shoulder = math.atan2(y, x) - math.atan2(link1 * math.sin(elbow),
                                             link0 + link1 * math.cos(elbow))
    return wrap_angle(shoulder), elbow


@dataclass
class TwoLinkReach:
    """IK to the target, then u = kp * (q* - q) - kd * q_dot per joint, clipped."""

    link0: float
    link1: float
    kp: float = 0.25
    """Effort per radian of joint error (Reacher-v5: an effort of 1 is 200 N m; its return
    counts the squared effort, so soft gains score best: -3.87 over 100 episodes)."""
    kd: float = 0.05
    """Effort per rad/s of joint speed."""
    max_effort: float = 1.0
    elbow_limit: float = 3.0
    """The elbow's range, +/- rad (Reacher's joint1: 3.0)."""
    elbow_sign: float = 1.0
    """Which way the elbow bends: +1 or -1; 0 picks the side nearer the present angle."""

    def act(self, shoulder: float, elbow: float, shoulder_rate: float, elbow_rate: float,
            target_x: float, target_y: float) -> np.ndarray:
        hint = self.elbow_sign if self.elbow_sign else elbow
        goal = two_link_ik(target_x, target_y, self.link0, self.link1, elbow_hint=hint,
                           elbow_limit=self.elbow_limit)
        error = np.array([wrap_angle(goal[0] - shoulder), goal[1] - elbow])
        u = self.kp * error - self.kd * np.array([shoulder_rate, elbow_rate])
        return np.clip(u, -self.max_effort, self.max_effort)
