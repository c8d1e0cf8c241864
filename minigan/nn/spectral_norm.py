"""Spectral normalisation (Miyato et al., 2018, "Spectral Normalization for GANs").

A layer's weight W, viewed as a matrix, is divided by its largest singular value sigma(W), so
the layer's map is (close to) 1-Lipschitz; a critic built from such layers cannot grow steep,
which keeps GAN training stable. sigma is estimated by power iteration: vectors u and v, kept
between calls, are refined once (or ``n_power_iterations`` times) per training forward pass,

    v = W^T u / |W^T u|,    u = W v / |W v|,    sigma = u^T W v,

so the estimate keeps up with W as it trains. As in PyTorch's ``torch.nn.utils.spectral_norm``,
u and v are constants of each forward pass but sigma is not: the gradient flows through
W / sigma(W) to W.

    >>> from minigan import nn
    >>> critic_layer = nn.utils.spectral_norm(nn.Linear(20, 1))
    >>> sorted(critic_layer.state_dict())
    ['bias', 'weight_orig', 'weight_u', 'weight_v']
"""
from .. import backend
from ..autograd import Tensor, no_grad
from ..backend import xp
from .layers import ConvTranspose2d
from .module import Parameter


def _normalize(vector, eps):
    """vector / max(|vector|, eps): eps only guards against dividing by zero."""
    return vector / xp.maximum(xp.sqrt(xp.sum(vector * vector)), eps)


class SpectralNorm:
    """The forward pre-hook that ``spectral_norm`` installs: before each forward it sets
    ``module.<name> = <name>_orig / sigma``, running power iterations first in training mode."""

    def __init__(self, name, n_power_iterations, dim, eps):
        self.name = name
        self.n_power_iterations = n_power_iterations
        self.dim = dim
        self.eps = eps

    def matrix(self, weight):
        """``weight`` as a matrix: axis ``dim`` gives the rows, the other axes the columns."""
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.ndim) if d != self.dim))
        return weight.reshape(weight.shape[0], -1)

    def power_iterate(self, w, u, v):
        """Refine the singular-vector estimates ``u`` and ``v`` of the array ``w`` in place."""
        for _ in range(self.n_power_iterations):
            v[...] = _normalize(w.T @ u, self.eps)
            u[...] = _normalize(w @ v, self.eps)

    def compute_weight(self, module, do_power_iteration):
        weight = getattr(module, self.name + "_orig")
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        mat = self.matrix(weight)
        if do_power_iteration:
            with no_grad():
                self.power_iterate(mat.data, u.data, v.data)
        # copies: this forward's graph must not see the next forward's in-place update of u, v
        u_now, v_now = Tensor(u.data.copy()), Tensor(v.data.copy())
        sigma = u_now @ (mat @ v_now)
        return weight / sigma

    def __call__(self, module, args):
        setattr(module, self.name, self.compute_weight(module, module.training))


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Reparametrise ``module.<name>`` as ``<name>_orig / sigma(<name>_orig)``; returns ``module``.

    The trained Parameter becomes ``<name>_orig``; the power-iteration vectors ``<name>_u`` and
    ``<name>_v`` are buffers (saved in the state dict, as in PyTorch), drawn from minigan's
    generator and normalised. ``dim`` is the axis that gives the matrix's rows: 0, or 1 for
    ConvTranspose2d, whose weight is (in, out, kh, kw).

        >>> from minigan import nn
        >>> d = spectral_norm(nn.Conv2d(3, 64, 4, stride=2, padding=1))
        >>> d.weight_u.shape, d.weight_v.shape
        ((64,), (48,))
    """
    if n_power_iterations <= 0:
        raise ValueError(f"spectral_norm: n_power_iterations must be positive, got {n_power_iterations}")
    for hook in module._forward_pre_hooks:
        if isinstance(hook, SpectralNorm) and hook.name == name:
            raise RuntimeError(f"spectral_norm: {type(module).__name__}.{name} is already normalised")
    weight = module._parameters.get(name)
    if weight is None:
        raise ValueError(f"spectral_norm: {type(module).__name__} has no parameter {name!r} "
                         f"(its parameters: {', '.join(module._parameters) or 'none'})")
    if dim is None:
        dim = 1 if isinstance(module, ConvTranspose2d) else 0
    fn = SpectralNorm(name, n_power_iterations, dim % weight.ndim, eps)
    rows, cols = fn.matrix(weight).shape
    u = _normalize(backend.randn((rows,), weight.dtype), eps)
    v = _normalize(backend.randn((cols,), weight.dtype), eps)

    delattr(module, name)
    module.register_parameter(name + "_orig", weight)
    module.register_buffer(name + "_u", Tensor(u))
    module.register_buffer(name + "_v", Tensor(v))
    with no_grad():
        setattr(module, name, fn.compute_weight(module, do_power_iteration=False))
    module.register_forward_pre_hook(fn)
    return module


def remove_spectral_norm(module, name="weight"):
    """Undo ``spectral_norm``: ``<name>`` becomes a plain Parameter again, holding the current
    normalised weight (as the last forward used it); returns ``module``."""
    for hook in module._forward_pre_hooks:
        if isinstance(hook, SpectralNorm) and hook.name == name:
            break
    else:
        raise ValueError(f"remove_spectral_norm: {type(module).__name__}.{name} is not normalised")
    with no_grad():
        weight = hook.compute_weight(module, do_power_iteration=False)
    module._forward_pre_hooks.remove(hook)
    for suffix in ("", "_orig", "_u", "_v"):
        delattr(module, name + suffix)
    module.register_parameter(name, Parameter(weight.data))
    return module
