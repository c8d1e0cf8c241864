import re

import numpy as np
import pytest

import minigan as mg
from minigan.function import Function


class WrongSquare(Function):
    """x^2 with a deliberately wrong derivative (x instead of 2x)."""

    def forward(self, a):
        return a * a

    def backward(self, g):
        return g * self.inputs[0]


class SquareWithWrongSecondDerivative(Function):
    """x^2 whose backward is right in value but not differentiable the right way."""

    def forward(self, a):
        return a * a

    def backward(self, g):
        return g * mg.tensor(2 * self.inputs[0].data)  # a constant: d/dx of it is lost


def test_gradcheck_catches_a_wrong_backward(float64):
    x = mg.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    with pytest.raises(mg.GradcheckError, match=r"input 0\) \(shape \(3,\)\) at index \(0,\) is ") as caught:
        mg.gradcheck(lambda x: WrongSquare.apply(x), [x])
    analytic, numeric = (float(w) for w in re.findall(r"is (\S+) analytically but (\S+) by", str(caught.value))[0])
    assert np.isclose(numeric, 2 * analytic)  # the wrong backward is off by exactly the factor 2


def test_gradgradcheck_catches_a_backward_that_is_not_differentiable(float64):
    x = mg.tensor(np.array([0.5, -1.0]), requires_grad=True)
    assert mg.gradcheck(lambda x: SquareWithWrongSecondDerivative.apply(x) * x, [x])
    with pytest.raises(mg.GradcheckError, match="gradgradcheck"):
        mg.gradgradcheck(lambda x: SquareWithWrongSecondDerivative.apply(x) * x, [x])


def test_gradcheck_passes_a_right_backward(float64):
    x = mg.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    assert mg.gradcheck(lambda x: x * x, [x]) and mg.gradgradcheck(lambda x: x * x * x, [x])


def test_gradcheck_wants_float64():
    x = mg.tensor([1.0], requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        mg.gradcheck(lambda x: x * x, [x])
