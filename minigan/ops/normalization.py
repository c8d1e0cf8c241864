"""Batch normalisation in training mode, fused for speed.

Its definition is the composition of primitives ``normalize_batch`` below (mean, subtract,
multiply, power -1/2), used by ``minigan.functional.reference.batch_norm``; the fused op must
agree with it in values, first and second derivatives, and the tests check that it does.
"""
from ..autograd import grad, is_grad_enabled
from ..function import Function
from ..backend import xp
from .elementwise import const
from .reductions import kept_shape, mean


def normalize_batch(x, axes, eps):
    """(x - mean) / sqrt(var + eps) over ``axes`` with the biased variance, in primitives."""
    centred = x - mean(x, axes, keepdims=True)
    return centred * (mean(centred * centred, axes, keepdims=True) + eps) ** -0.5


class BatchNormTrain(Function):
    """y = normalize_batch(x) * weight + bias with this batch's statistics over ``axes``, fused:
    the forward in ~5 passes over x instead of ~9, and the first-order backward as the closed form

        dx = weight * rstd * (g - mean(g) - xhat * mean(g * xhat)),
        dweight = sum(g * xhat),  dbias = sum(g),

    on arrays. That closed form is not written in Tensor ops, so when the backward itself is
    being recorded (create_graph=True) the op differentiates ``normalize_batch`` instead, and
    second derivatives stay exact. The batch mean and variance go into ``stats`` for the
    running statistics.

    The backward remakes xhat from x (which the graph keeps anyway, as this op's input) and the
    saved mean and rstd, instead of keeping xhat from the forward: one array the size of x
    less held per layer between forward and backward, for two more passes over it.
    """

    reads_inputs, reads_output = (0, 1), False

    def forward(self, x, weight, bias, axes, eps, stats):
        shape = kept_shape(x.shape, axes)
        self.axes, self.eps = axes, eps
        batch_mean = xp.mean(x, axis=axes, keepdims=True)
        xhat = x - batch_mean
        squares = xhat * xhat
        batch_var = xp.mean(squares, axis=axes, keepdims=True)
        stats.update(mean=batch_mean, var=batch_var)
        self.mean, self.rstd = batch_mean, 1.0 / xp.sqrt(batch_var + eps)
        xhat *= self.rstd
        out = xp.multiply(xhat, weight.reshape(shape), out=squares)
        out += bias.reshape(shape)
        return out

    def backward(self, g):
        x, weight, bias = self.inputs
        shape = kept_shape(x.shape, self.axes)
        if is_grad_enabled():  # the backward pass is being recorded
            out = normalize_batch(x, self.axes, self.eps) * weight.reshape(shape) + bias.reshape(shape)
            wanted = [t for t, need in zip(self.inputs, self.needs_input_grad) if need]
            grads = iter(grad(out, wanted, grad_outputs=g, create_graph=True, allow_unused=True))
            return tuple(next(grads) if need else None for need in self.needs_input_grad)
        gd = g.data
        xhat = xp.subtract(x.data, self.mean)
        xhat *= self.rstd
        count = gd.size // weight.data.size
        dbias = xp.sum(gd, axis=self.axes, keepdims=True)
        dweight = xp.sum(gd * xhat, axis=self.axes, keepdims=True)
        dx = None
        if self.needs_input_grad[0]:
            dx = xhat  # xhat is not needed after this: dx is made in its place
            dx *= dweight / count
            xp.subtract(gd, dx, out=dx)
            dx -= dbias / count
            dx *= weight.data.reshape(shape) * self.rstd
        return const(dx), const(dweight.reshape(weight.shape)), const(dbias.reshape(bias.shape))


def batch_norm_train(x, weight, bias, axes, eps):
    """Apply BatchNormTrain; returns (y, batch_mean, batch_var), the statistics as arrays."""
    stats = {}
    out = BatchNormTrain.apply(x, weight, bias, axes=axes, eps=eps, stats=stats)
    return out, stats["mean"], stats["var"]


def normalize_groups(x, groups, eps):
    """(x - mean) / sqrt(var + eps) over each sample's channel groups of an (N, C, ...) x, in
    primitives: C/groups neighbouring channels and all their positions share one mean and one
    (biased) variance. Instance norm is the case groups = C."""
    n = x.shape[0]
    return normalize_batch(x.reshape(n, groups, -1), (2,), eps).reshape(x.shape)


def _is_batch_last(a):
    """True for an (N, C, ...) array whose memory is ordered (C, ..., N), N > 1."""
    return a.ndim > 2 and a.shape[0] > 1 and a.transpose(*range(1, a.ndim), 0).flags.c_contiguous


def _grouped(a, groups, batch_last):
    """``a`` (N, C, ...) as a 3-D view (R, L, Q) in which each (sample, group) pair is one
    (row, column) pair and its L = C/groups * (positions) values run along the middle axis:
    (G, L, N) when ``batch_last``, (N*G, L, 1) otherwise (a copy only if ``a`` lies otherwise)."""
    n = a.shape[0]
    if batch_last:
        return xp.ascontiguousarray(a.transpose(*range(1, a.ndim), 0)).reshape(groups, -1, n)
    return xp.ascontiguousarray(a).reshape(n * groups, -1, 1)


def _per_channel(v, groups, channels):
    """The 5-D view (P, G, C/G, positions, Q) of a grouped view (R, L, Q), where per-channel
    numbers broadcast as (1, G, C/G, 1, 1) and per-group ones as (P, G, 1, 1, Q)."""
    r, length, q = v.shape
    return v.reshape(r // groups, groups, channels // groups, length * groups // channels, q)


def _sum_middle(v):
    """Sums over the middle axis of (R, L, Q) as (R, 1, Q), by matrix products (BLAS reads the
    array once; NumPy's own sum over a middle axis is several times slower)."""
    r, length, q = v.shape
    ones = xp.ones(length, dtype=v.dtype)
    if q == 1:
        return (v.reshape(r, length) @ ones).reshape(r, 1, 1)
    return ones.reshape(1, length) @ v


class GroupNormTrain(Function):
    """y = normalize_groups(x) * weight + bias (per channel), fused, for group norm and
    instance norm: each (sample, group) is normalised by its own statistics. The forward
    in 4 passes over x (3 without weight and bias); the first-order backward, with
    g' = g * weight,

        dx = rstd * (g' - mean(g') - xhat * mean(g' * xhat))     (means over each group),
        dweight = sum(g * xhat),  dbias = sum(g)                 (sums over samples, positions),

    on arrays; recorded (create_graph=True), it differentiates ``normalize_groups`` instead,
    as BatchNormTrain does. ``weight`` and ``bias`` are both given or both left out. The
    (N, G) means and biased variances go into ``stats``.
    """

    reads_inputs, reads_output = None, False  # reads_output: set when the output is xhat

    def forward(self, x, *affine, groups, eps, stats):
        self.groups, self.eps, self.batch_last = groups, eps, _is_batch_last(x)
        v = _grouped(x, groups, self.batch_last)
        length = v.shape[1]
        mean = _sum_middle(v) / length
        centred = v - mean
        var = xp.einsum("rlq,rlq->rq", centred, centred)[:, None, :] / length
        self.rstd = 1.0 / xp.sqrt(var + eps)
        n = x.shape[0]
        stats.update(mean=_by_sample(mean, n, self.batch_last), var=_by_sample(var, n, self.batch_last))
        if not affine:  # the output is xhat itself, which the backward reads
            centred *= self.rstd
            self.saved, self.reads_output = (centred, False), True
            return _ungrouped(centred, x.shape, self.batch_last)
        # y = centred * (rstd * weight) + bias: two passes, and the backward keeps centred
        self.saved = (centred, True)
        c5 = _per_channel(centred, groups, x.shape[1])
        per_row = c5.shape[:3] + (1, c5.shape[4])
        weight, bias = affine
        scale = _rows(_per_channel(self.rstd, groups, groups) * weight.reshape(1, groups, -1, 1, 1))
        out = _rows(c5) * scale
        out += _rows(xp.broadcast_to(bias.reshape(1, groups, -1, 1, 1), per_row))
        return _ungrouped(out.reshape(c5.shape), x.shape, self.batch_last)

    def backward(self, g):
        x = self.inputs[0]
        if is_grad_enabled():  # the backward pass is being recorded
            out = normalize_groups(x, self.groups, self.eps)
            if len(self.inputs) == 3:
                shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
                out = out * self.inputs[1].reshape(shape) + self.inputs[2].reshape(shape)
            wanted = [t for t, need in zip(self.inputs, self.needs_input_grad) if need]
            grads = iter(grad(out, wanted, grad_outputs=g, create_graph=True, allow_unused=True))
            return tuple(next(grads) if need else None for need in self.needs_input_grad)
        groups, channels = self.groups, x.shape[1]
        g5 = _per_channel(_grouped(g.data, groups, self.batch_last), groups, channels)
        weight = self.inputs[1].data.reshape(1, groups, -1, 1, 1) if len(self.inputs) == 3 else None
        saved, centred = self.saved
        dx, sum_g, sum_gx = _group_norm_backward(g5, _per_channel(saved, groups, channels),
                                                 _per_channel(self.rstd, groups, groups), weight, centred)
        dx = const(_ungrouped(dx, x.shape, self.batch_last))
        if weight is None:
            return (dx,)
        per_channel = (0, 3, 4)
        return (dx, const(sum_gx.sum(axis=per_channel).reshape(-1)),
                const(sum_g.sum(axis=per_channel).reshape(-1)))


_BLOCK = 1 << 16  # elements per block: a block's temporaries stay in the CPU's cache


def _rows(a5):
    """A 5-D per-channel view (P, G, C/G, S, Q) as rows of positions, one per (sample,
    channel): (rows, S) when Q is 1, else (rows, S, Q). Per-channel numbers (S = 1) alike."""
    return a5.reshape((-1, a5.shape[3]) if a5.shape[4] == 1 else (-1,) + a5.shape[3:])


def _group_norm_backward(g5, saved5, rstd5, weight, centred):
    """dx and the per-(sample, channel) sums of g and g * xhat, for 5-D views g5 and saved5, which
    is xhat or, if ``centred``, the centred input xhat / rstd. The arrays are seen as rows of
    positions, one per (sample, channel), which NumPy runs fastest, and dx is made a block of
    rows at a time, so that its temporaries stay in cache."""
    p, groups, per, positions, q = g5.shape
    g, saved = _rows(g5), _rows(saved5)
    sum_g = _sum_middle(g.reshape(-1, positions, q)).reshape(p, groups, per, 1, q)
    sum_gx = xp.einsum("rs,rs->r" if q == 1 else "rsq,rsq->rq", g, saved).reshape(sum_g.shape)
    if centred:
        sum_gx *= rstd5
    wg, wgx = (sum_g, sum_gx) if weight is None else (sum_g * weight, sum_gx * weight)
    # dx = rstd * (g * weight - mean_g - xhat * mean_gx), with means over each group
    mix = -rstd5 * wgx.sum(axis=2, keepdims=True) / (per * positions)
    coefficients = (rstd5 if weight is None else rstd5 * weight, mix * rstd5 if centred else mix,
                    -rstd5 * wg.sum(axis=2, keepdims=True) / (per * positions))
    scale, mix, shift = (_rows(xp.ascontiguousarray(xp.broadcast_to(c, sum_g.shape))) for c in coefficients)
    dx = xp.empty(g.shape, dtype=g.dtype)
    step = max(1, _BLOCK // g[0].size)
    temp = None
    for start in range(0, len(g), step):
        rows = slice(start, start + step)
        out = dx[rows]
        xp.multiply(g[rows], scale[rows], out=out)
        temp = xp.multiply(saved[rows], mix[rows], out=temp if temp is not None and temp.shape == out.shape else None)
        out += temp
        out += shift[rows]
    return dx.reshape(g5.shape), sum_g, sum_gx


def _by_sample(stat, n, batch_last):
    """Per-group statistics (R, 1, Q) of a grouped view as an (N, G) array."""
    return stat.reshape(stat.shape[0], n).T if batch_last else stat.reshape(n, -1)


def _ungrouped(v5, shape, batch_last):
    """A 5-D per-channel view back as an array of ``shape`` (N, C, ...)."""
    if batch_last:
        return v5.reshape(*shape[1:], shape[0]).transpose(len(shape) - 1, *range(len(shape) - 1))
    return v5.reshape(shape)


def group_norm_train(x, weight, bias, groups, eps):
    """Apply GroupNormTrain; returns (y, mean, var) with the (N, G) statistics as arrays."""
    stats = {}
    affine = () if weight is None else (weight, bias)
    out = GroupNormTrain.apply(x, *affine, groups=groups, eps=eps, stats=stats)
    return out, stats["mean"], stats["var"]
