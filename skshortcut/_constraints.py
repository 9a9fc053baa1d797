"""A scikit-learn parameter constraint for conditions scikit-learn's own constraints do not express.

scikit-learn's parameter validation takes only its own constraint classes;
:class:`Satisfies` is an ``Options`` whose membership test is a predicate
(a multiple of 8, a template with given fields, a pair of numbers, a device
torch knows), with a description for the error message.
"""

from __future__ import annotations

from sklearn.utils._param_validation import Options

__all__ = ["Satisfies"]


class Satisfies(Options):
    """Values for which ``predicate(value)`` is true, described as ``description`` in errors.

    Examples
    --------
    >>> from sklearn.utils._param_validation import validate_parameter_constraints
    >>> from skshortcut._constraints import Satisfies
    >>> even = Satisfies(lambda v: isinstance(v, int) and v % 2 == 0, "an even integer")
    >>> even.is_satisfied_by(4), even.is_satisfied_by(3)
    (True, False)
    >>> validate_parameter_constraints({"n": [even]}, {"n": 3}, caller_name="f")
    Traceback (most recent call last):
    ...
    sklearn.utils._param_validation.InvalidParameterError: The 'n' parameter of f must be an even integer. Got 3 instead.
    """

    def __init__(self, predicate, description):
        super().__init__(object, set())
        self.predicate = predicate
        self.description = description

    def is_satisfied_by(self, val):
        try:
            return bool(self.predicate(val))
        except Exception:  # noqa: BLE001 - a value the predicate cannot read does not satisfy it
            return False

    def __str__(self):
        return self.description
