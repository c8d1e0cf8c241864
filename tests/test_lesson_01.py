"""Lesson 01's exercise: the learner's own Function (softplus) is checked the way every op in
minigan is, and the solution in the lesson passes those checks."""
import numpy as np
import pytest

import minigan as mg
from helpers import load_lesson


@pytest.fixture(scope="module")
def lesson():
    return load_lesson("01_autograd")


def test_the_solution_passes_both_gradient_checks(lesson, float64):
    x = mg.tensor(np.linspace(-40, 40, 17), requires_grad=True)
    assert mg.gradcheck(lesson.softplus, [x]) and mg.gradgradcheck(lesson.softplus, [x])


def test_the_solution_computes_softplus_without_overflow(lesson, float64):
    x = np.array([-800.0, -3.0, 0.0, 2.0, 800.0])
    got = lesson.softplus(mg.tensor(x)).numpy()
    expected = np.logaddexp(0.0, x)
    np.testing.assert_allclose(got, expected, rtol=1e-15, atol=1e-300)


def test_a_backward_without_the_input_fails_the_second_order_check(lesson, float64):
    # the exercise's point: a derivative taken from a constant is right once and wrong twice
    class ConstantSlope(lesson.Softplus):
        def backward(self, g):
            return g * mg.tensor(mg.sigmoid(self.inputs[0]).data)

    x = mg.tensor(np.array([-1.0, 0.5]), requires_grad=True)
    assert mg.gradcheck(lambda t: ConstantSlope.apply(t) * t, [x])
    with pytest.raises(mg.GradcheckError):
        mg.gradgradcheck(lambda t: ConstantSlope.apply(t) * t, [x])
