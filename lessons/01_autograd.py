"""Lesson 01 — autograd: how minigan computes gradients, and gradients of gradients.

What you will see:
  1. tensors and the graph they record as you compute;
  2. a derivative worked out by hand (the chain rule) next to the one the engine finds;
  3. a finite-difference check, the test every op in minigan passes;
  4. a second derivative through ``grad(create_graph=True)`` — the trick WGAN-GP depends on;
  5. a plot of f(x) = tanh(x) * x and its first two derivatives, all from the engine;
  6. an exercise: your own op (softplus) as a Function, checked with gradcheck/gradgradcheck.

Run it:
    python lessons/01_autograd.py            # prints, and writes runs/01_autograd/derivatives.png
"""
import argparse
import json
import math
import os

import minigan as mg
from minigan import viz
from minigan.experiment import non_negative_int


def show_graph(t, depth=0):
    """Print the ops that made ``t``: every node remembers its op and inputs."""
    label = t.node.label if t.node is not None else ("leaf (requires grad)" if t.requires_grad else "constant")
    print("    " + "  " * depth + f"{label}  shape={t.shape}")
    if t.node is not None:
        for parent in t.node.inputs:
            show_graph(parent, depth + 1)


class Softplus(mg.Function):
    """Exercise 6, solved: softplus(x) = log(1 + exp(x)) as an op of your own.

    Try it before reading on. A Function needs two methods:
      forward(self, a)  -- a NumPy (or CuPy) array in, an array out. Keep what backward needs.
      backward(self, g) -- the gradient of the output in (a Tensor), the gradient of the input
                           out, written with Tensor ops so it can be differentiated again.
    The derivative of softplus is sigmoid(x); computing it from the saved input keeps the
    backward a function of x, so gradgradcheck sees the second derivative sigmoid'(x) too.
    """

    def forward(self, a):
        # log(1 + e^a) = max(a, 0) + log1p(e^-|a|): exp never sees a positive number
        return mg.backend.xp.maximum(a, 0) + mg.backend.xp.log1p(mg.backend.xp.exp(-abs(a)))

    def backward(self, g):
        (x,) = self.inputs
        return g * mg.sigmoid(x)


def softplus(x):
    return Softplus.apply(x)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Lesson 01: autograd and second derivatives")
    parser.add_argument("--out", default="runs/01_autograd")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--quick", action="store_true", help="fewer plot points (for smoke tests)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    mg.manual_seed(args.seed)

    # 1. A tensor that requires grad starts a graph; every op on it adds a node.
    print("1. The graph of y = sum(tanh(w * x + b))")
    x = mg.tensor([0.5, -1.0, 2.0])
    w = mg.tensor([1.5], requires_grad=True)
    b = mg.tensor([0.1], requires_grad=True)
    y = mg.tanh(w * x + b).sum()
    show_graph(y)

    # 2. The chain rule by hand: dy/dw = sum((1 - tanh(u)^2) * x), dy/db = sum(1 - tanh(u)^2),
    #    with u = w x + b. The engine walks the same graph backwards and multiplies the same terms.
    y.backward()
    u = [1.5 * xi + 0.1 for xi in (0.5, -1.0, 2.0)]
    by_hand_w = sum((1 - math.tanh(ui) ** 2) * xi for ui, xi in zip(u, (0.5, -1.0, 2.0)))
    by_hand_b = sum(1 - math.tanh(ui) ** 2 for ui in u)
    print("\n2. Backward by hand and by the engine")
    print(f"    dy/dw: by hand {by_hand_w:.6f}   engine {w.grad.item():.6f}")
    print(f"    dy/db: by hand {by_hand_b:.6f}   engine {b.grad.item():.6f}")

    # 3. Finite differences: nudge each input by +-eps and watch the output move. Float64,
    #    because float32's 7 digits drown a difference of 1e-6.
    print("\n3. Checking the engine against finite differences (float64)")
    x64 = mg.randn(4, dtype="float64", requires_grad=True)
    ok = mg.gradcheck(lambda v: mg.tanh(v) * v, [x64])
    ok2 = mg.gradgradcheck(lambda v: mg.tanh(v) * v, [x64])
    print(f"    gradcheck: {ok}    gradgradcheck: {ok2}")

    # 4. A second derivative. With create_graph=True the backward pass is recorded like any
    #    computation, so we can differentiate the gradient itself.
    #    f(x) = tanh(x) x,  f' = tanh + x (1 - tanh^2),  f'' = 2 (1 - tanh^2)(1 - x tanh)
    print("\n4. Second derivative of f(x) = tanh(x) * x at x = 0.7")
    x1 = mg.tensor([0.7], dtype="float64", requires_grad=True)
    (d1,) = mg.grad((mg.tanh(x1) * x1).sum(), x1, create_graph=True)
    (d2,) = mg.grad(d1.sum(), x1)
    t = math.tanh(0.7)
    print(f"    f'(0.7):  engine {d1.item():.6f}   closed form {t + 0.7 * (1 - t * t):.6f}")
    print(f"    f''(0.7): engine {d2.item():.6f}   closed form {2 * (1 - t * t) * (1 - 0.7 * t):.6f}")

    # 5. The whole curve at once: one backward pass gives f' at every point, a second gives f''.
    points = 41 if args.quick else 401
    xs = mg.tensor([-4 + 8 * i / (points - 1) for i in range(points)], dtype="float64", requires_grad=True)
    f = mg.tanh(xs) * xs
    (df,) = mg.grad(f.sum(), xs, create_graph=True)
    (d2f,) = mg.grad(df.sum(), xs)
    path = os.path.join(args.out, "derivatives.png")
    viz.plot_functions(xs.numpy(), {"f(x) = x tanh(x)": f.numpy(), "f'(x)": df.numpy(),
                                    "f''(x)": d2f.numpy()}, path, title="A function and two derivatives from minigan")

    # 6. Your own op. Everything above was made of minigan's primitives; writing one yourself
    #    takes a forward on arrays and a backward in Tensor ops (the Softplus class above). The
    #    same two checks then tell you whether your derivative is right, to first and second order.
    print("\n6. Exercise: softplus written as a Function of your own, checked like every op")
    z = mg.tensor([-30.0, -1.0, 0.0, 0.5, 30.0], dtype="float64", requires_grad=True)
    own_ok = mg.gradcheck(softplus, [z]) and mg.gradgradcheck(softplus, [z])
    agree = float((softplus(z) - mg.F.softplus(z)).abs().max().item())
    print(f"    gradcheck and gradgradcheck pass: {own_ok}    |yours - F.softplus| <= {agree:.1e}")
    with open(os.path.join(args.out, "metrics.json"), "w") as fh:
        json.dump({"gradcheck": ok, "gradgradcheck": ok2, "d2f_at_0.7": d2.item(),
                   "own_softplus_checks": own_ok, "own_softplus_max_difference": agree}, fh, indent=2)
    print(f"\nWrote {path}")


if __name__ == "__main__":
    main()
