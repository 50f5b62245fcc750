"""Node parameters declared from one schema each: name, default, description, allowed values.

A node lists its parameters once, as a tuple of ``Param`` (in the manner of
generate_parameter_library's YAML in ros2_control); ``declare_params`` declares them with
their descriptions, read-only flags and ranges (``ros2 param describe`` shows them), checks
the values the node starts with, and refuses a runtime change out of range with the
parameter's name and the allowed values. The node's own on-set callbacks then see only
values of the right type and range.
"""

from dataclasses import dataclass
import math
from typing import Any, Optional

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)


@dataclass(frozen=True)
class Param:
    """One parameter of a node and the values it may take."""

    name: str
    default: Any
    """The default; its type is the parameter's type (bool, int, float, str, list of str)."""
    description: str
    read_only: bool = True
    """False: may be changed while the node runs."""
    low: Optional[float] = None
    """Smallest number allowed (inclusive), for int and float parameters."""
    high: Optional[float] = None
    """Largest number allowed (inclusive)."""
    choices: tuple = ()
    """The only values allowed, for str parameters."""
    also: tuple = ()
    """Values allowed besides the range, with their meaning in the description (0: the task
    spec's value, say)."""

    def allowed(self) -> str:
        """The allowed values in words, as a refusal states them."""
        if self.choices:
            return 'one of ' + ', '.join(repr(c) for c in self.choices)
        parts = []
        if self.low is not None or self.high is not None:
            kind = 'a whole number' if type(self.default) is int else 'a number'
            low = '-inf' if self.low is None else f'{self.low:g}'
            high = 'inf' if self.high is None else f'{self.high:g}'
            parts.append(f'{kind} from {low} to {high}')
        parts += [repr(v) for v in self.also]
        return ' or '.join(parts) if parts else f'a {type(self.default).__name__}'

    def problem(self, value) -> Optional[str]:
        """Why ``value`` is not allowed, or None."""
        if value in self.also and type(value) is type(self.default):
            return None
        if self.choices and value not in self.choices:
            return f'parameter {self.name} is {value!r}; expected {self.allowed()}'
        if self.low is None and self.high is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) \
                or (self.low is not None and value < self.low) \
                or (self.high is not None and value > self.high):
            return f'parameter {self.name} is {value!r}; expected {self.allowed()}'
        return None

    def descriptor(self) -> ParameterDescriptor:
        descriptor = ParameterDescriptor(description=self.description,
                                         read_only=self.read_only,
                                         additional_constraints=f'{self.allowed()}')
        # ROS can state a plain range itself (ros2 param describe shows it, and rclpy then
        # refuses values outside it); a range with extra allowed values is checked here.
        if not self.also and self.low is not None and self.high is not None:
            if type(self.default) is int:
                descriptor.integer_range = [IntegerRange(
                    from_value=int(self.low), to_value=int(self.high), step=0)]
            elif type(self.default) is float:
                descriptor.floating_point_range = [FloatingPointRange(
                    from_value=float(self.low), to_value=float(self.high), step=0.0)]
        return descriptor


def declare_params(node, schema: tuple) -> dict:
    """Declare ``schema`` on ``node``; return the values by name.

    A start-up value outside what a parameter allows raises ``ValueError`` naming it; a
    runtime change outside it is refused with the same sentence. A parameter declared
    already (a lifecycle node declares in its constructor and reads again on every
    configure) is read as it is now.
    """
    values = {}
    declared = []
    for param in schema:
        if node.has_parameter(param.name):
            values[param.name] = node.get_parameter(param.name).value
            continue
        declared.append(param)
        try:
            value = node.declare_parameter(param.name, param.default,
                                           param.descriptor()).value
        except Exception as error:  # noqa: BLE001 - rclpy's own range and type refusals
            raise ValueError(f'parameter {param.name}: {error}; expected '
                             f'{param.allowed()}') from None
        problem = param.problem(value)
        if problem:
            raise ValueError(problem)
        values[param.name] = value
    if not declared:
        return values
    by_name = {param.name: param for param in declared}

    def check(parameters) -> SetParametersResult:
        for parameter in parameters:
            param = by_name.get(parameter.name)
            problem = param.problem(parameter.value) if param else None
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        return SetParametersResult(successful=True)

    # A SafeNode runs these checks before its own on-set callbacks, whatever the order they
    # were added in; a plain Node has rclpy's order (the last added runs first).
    getattr(node, 'add_parameter_check', node.add_on_set_parameters_callback)(check)
    return values
