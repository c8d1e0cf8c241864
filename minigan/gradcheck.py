"""Check analytic gradients against central finite differences, in float64.

``gradcheck`` compares the full Jacobian-vector products of ``fn`` with
(f(x + eps e_i) - f(x - eps e_i)) / 2 eps for every input element. ``gradgradcheck`` runs the
same check on the function x -> grad(<fn(x), v>, x, create_graph=True) for a fixed random v:
second derivatives checked by differentiating the gradient itself (HIPS autograd's trick).
PyTorch's defaults: eps 1e-6, atol 1e-5, rtol 1e-3.
"""
import itertools

from .autograd import Tensor, grad
from .backend import xp


class GradcheckError(AssertionError):
    """An analytic derivative disagrees with the finite-difference one."""


def _as_outputs(result):
    return list(result) if isinstance(result, (tuple, list)) else [result]


def _check_inputs(inputs):
    checked = []
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"gradcheck: input {i} is a {type(t).__name__}, expected a Tensor")
        if t.requires_grad and t.dtype != xp.float64:
            raise TypeError(
                f"gradcheck: input {i} is {t.dtype}; finite differences need float64 inputs "
                "(make them with dtype=float64 or call set_default_dtype(float64))"
            )
        checked.append(t)
    return checked


def _random_cotangents(outputs, seed):
    gen = xp.random.RandomState(seed) if hasattr(xp.random, "RandomState") else None
    return [Tensor(xp.asarray(gen.standard_normal(o.shape), dtype=xp.float64)) for o in outputs]


def _weighted_sum(outputs, cotangents):
    total = 0.0
    for o, v in zip(outputs, cotangents):
        total = total + (o * v).sum()
    return total


def _check(fn, inputs, eps, atol, rtol, what):
    inputs = _check_inputs(inputs)
    diff_inputs = [t for t in inputs if t.requires_grad]
    if not diff_inputs:
        raise ValueError(f"{what}: no input requires grad, so there is nothing to check")
    outputs = _as_outputs(fn(*inputs))
    cotangents = _random_cotangents(outputs, seed=1234)
    analytic = grad(_weighted_sum(outputs, cotangents), diff_inputs, allow_unused=True)

    def scalar_at():
        # evaluated with gradients enabled: fn may differentiate inside itself (a gradient penalty)
        return float(_weighted_sum(_as_outputs(fn(*inputs)), cotangents).item())

    positions = [i for i, t in enumerate(inputs) if t.requires_grad]
    for position, t, g in zip(positions, diff_inputs, analytic):
        expected = xp.zeros(t.shape, dtype=xp.float64) if g is None else g.data
        # nudge the input's own array at each index (a reshape of a non-contiguous array would
        # be a copy, and nudging it would leave the input unchanged)
        for index in itertools.product(*(range(n) for n in t.shape)):
            original = float(t.data[index])
            t.data[index] = original + eps
            plus = scalar_at()
            t.data[index] = original - eps
            minus = scalar_at()
            t.data[index] = original
            numeric = (plus - minus) / (2 * eps)
            got = float(expected[index])
            if abs(got - numeric) > atol + rtol * abs(numeric):
                raise GradcheckError(
                    f"{what}: d<fn, v>/d(input {position}) (shape {t.shape}) at index {index} "
                    f"is {got!r} analytically but {numeric!r} by finite differences "
                    f"(v: a fixed random weighting of the outputs)"
                )
    return True


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3):
    """True if the vector-Jacobian products of ``fn`` match central finite differences for
    every element of every input that requires grad; raises GradcheckError naming the input,
    the index and both values otherwise.

        >>> import minigan
        >>> x = minigan.randn(3, dtype="float64", requires_grad=True)
        >>> gradcheck(lambda x: (x * x).sum(), [x])
        True
    """
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    return _check(fn, inputs, eps, atol, rtol, "gradcheck")


def gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3):
    """Second derivatives: gradcheck of x -> d<fn(x), v>/dx, built with create_graph=True."""
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    _check_inputs(inputs)
    outputs = _as_outputs(fn(*inputs))
    cotangents = _random_cotangents(outputs, seed=4321)
    diff_positions = [i for i, t in enumerate(inputs) if t.requires_grad]

    def first_derivative(*xs):
        outs = _as_outputs(fn(*xs))
        wrt = [xs[i] for i in diff_positions]
        grads = grad(_weighted_sum(outs, cotangents), wrt, create_graph=True, allow_unused=True)
        return [g for g in grads if g is not None and g.requires_grad]

    if not first_derivative(*inputs):
        return True  # the first derivative is constant: nothing second-order to check
    return _check(first_derivative, inputs, eps, atol, rtol, "gradgradcheck")
