"""Lesson 02 — layers: from unfold/fold to Conv2d and ConvTranspose2d, BatchNorm and LeakyReLU.

The convolutional GAN of lesson 04 is built from four kinds of layer. This lesson opens each one:
  1. unfold (im2col): every kernel window of an image laid out as one column of a matrix, so a
     convolution becomes one matrix product, conv2d(x, w) = w_matrix @ unfold(x);
  2. fold (col2im), unfold's adjoint: a transposed convolution scatters each input pixel's
     kernel-weighted copy into the output, conv_transpose2d(x, w) = fold(w_matrix^T @ x);
  3. output-size arithmetic for both, checked against the layers;
  4. a finite-difference gradient check of a small convolution (float64);
  5. BatchNorm in train mode (statistics of the batch) and eval mode (running statistics);
  6. LeakyReLU, and why a discriminator uses it;
  7. the shapes flowing through lesson 04's DCGAN generator and discriminator.

Run it:
    python lessons/02_layers.py          # prints, and writes runs/02_layers/layers.png
"""
import argparse
import json
import os

import minigan as mg
from minigan import F, nn, viz
from minigan.data import load_dataset
from minigan.experiment import non_negative_int

np_round = 3  # digits shown when printing matrices


def show(name, t):
    """Print a small tensor as rows of numbers."""
    rows = t.numpy().round(np_round).tolist()
    print(f"  {name}  shape={t.shape}")
    for row in rows if t.ndim == 2 else [rows]:
        print("    " + " ".join(f"{v:6g}" for v in row))


def max_diff(a, b):
    return float((a - b).abs().max().item())


def im2col_by_hand():
    """1. and 2. Convolutions as matrix products, on a 1x1x4x4 image and a 2x2 kernel."""
    print("1. unfold: every 2x2 window of a 4x4 image becomes one column")
    x = mg.arange(16).reshape(1, 1, 4, 4).float()
    show("x[0, 0]", x[0, 0])
    cols = mg.unfold(x, kernel_size=2)  # (N, C*kh*kw, L) = (1, 4, 9): 9 windows of 4 values
    show("unfold(x)[0]   (row = position in the window, column = window)", cols[0])

    # A kernel flattened in the same order as a window is one row; the convolution is that row
    # times every column, i.e. one matrix product, reshaped back to the 3x3 grid of windows.
    w = mg.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # (out=1, in=1, 2, 2)
    by_matmul = (w.reshape(1, 4) @ cols).reshape(1, 1, 3, 3)
    by_conv = F.conv2d(x, w)
    show("w.reshape(1, 4) @ unfold(x), as 3x3", by_matmul[0, 0])
    print(f"  conv2d(x, w) equals it: max |difference| = {max_diff(by_conv, by_matmul):g}")

    print("\n2. fold: the transposed convolution scatters and sums")
    y = mg.tensor([[[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.0]]]])  # (1, 1, 3, 3)
    # ConvTranspose2d's weight is (in, out, kh, kw); each input pixel becomes a column of
    # kernel-weighted values (w^T @ y), and fold adds every column into its 2x2 window.
    w_t = w  # the same 2x2 kernel, now read as (in=1, out=1, 2, 2)
    scattered = w_t.reshape(1, 4).T @ y.reshape(1, 1, 9)  # (1, 4, 9)
    by_fold = mg.fold(scattered, output_size=(4, 4), kernel_size=2)
    by_layer = F.conv_transpose2d(y, w_t)
    show("y[0, 0]", y[0, 0])
    show("fold(w^T @ y)   (a copy of the kernel at each pixel, scaled by it)", by_fold[0, 0])
    print(f"  conv_transpose2d(y, w) equals it: max |difference| = {max_diff(by_layer, by_fold):g}")

    # fold is unfold's adjoint: <unfold(a), b> = <a, fold(b)>. So a transposed convolution with w
    # is exactly the input-gradient of a convolution with w, and the other way round.
    a, b = mg.randn(1, 1, 4, 4, dtype="float64"), mg.randn(1, 1, 3, 3, dtype="float64")
    k = mg.randn(1, 1, 2, 2, dtype="float64")
    left = (F.conv2d(a, k) * b).sum().item()
    right = (a * F.conv_transpose2d(b, k)).sum().item()
    print(f"  <conv2d(a, k), b> = {left:.6f}   <a, conv_transpose2d(b, k)> = {right:.6f}")
    return x, cols


def output_sizes():
    """3. Output-size arithmetic, checked against the layers."""
    print("\n3. Output sizes")
    print("  conv:            out = floor((in + 2p - k) / s) + 1")
    print("  transposed conv: out = (in - 1) s - 2p + k + output_padding")
    cases = [(28, 4, 2, 1), (14, 4, 2, 1), (7, 4, 2, 1), (7, 7, 1, 0), (28, 3, 1, 1), (5, 3, 2, 0)]
    print("   in  k  s  p | conv layer | convT layer")
    ok = True
    for size, k, s, p in cases:
        conv_formula = (size + 2 * p - k) // s + 1
        convt_formula = (size - 1) * s - 2 * p + k
        x = mg.zeros(1, 1, size, size)
        conv_layer = nn.Conv2d(1, 1, k, s, p)(x).shape[-1]
        convt_layer = nn.ConvTranspose2d(1, 1, k, s, p)(x).shape[-1]
        ok &= conv_formula == conv_layer and convt_formula == convt_layer
        print(f"  {size:>3} {k:>2} {s:>2} {p:>2} | {conv_formula:>4} {conv_layer:>5} | "
              f"{convt_formula:>5} {convt_layer:>5}")
    # k=4, s=2, p=1 halves a size (conv) or doubles it (transposed): the DCGAN building block.
    print(f"  formulas agree with the layers: {ok}")
    return ok


def gradient_check():
    """4. The convolution's gradients against central finite differences, in float64."""
    print("\n4. gradcheck of conv2d (stride 2, padding 1) and conv_transpose2d, float64")
    x = mg.randn(2, 2, 5, 5, dtype="float64", requires_grad=True)
    w = mg.randn(3, 2, 3, 3, dtype="float64", requires_grad=True)
    b = mg.randn(3, dtype="float64", requires_grad=True)
    conv_ok = mg.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), [x, w, b])
    y = mg.randn(2, 3, 3, 3, dtype="float64", requires_grad=True)
    w_t = mg.randn(3, 2, 4, 4, dtype="float64", requires_grad=True)
    convt_ok = mg.gradcheck(lambda y, w: F.conv_transpose2d(y, w, stride=2, padding=1), [y, w_t])
    print(f"  conv2d: {conv_ok}   conv_transpose2d: {convt_ok}")
    return conv_ok and convt_ok


def batch_norm_modes(quick):
    """5. BatchNorm: train mode normalises with the batch, eval mode with running averages."""
    print("\n5. BatchNorm2d: train mode vs eval mode")
    bn = nn.BatchNorm2d(2)
    batch = mg.randn(16, 2, 4, 4) * 2.0 + 3.0  # every channel has mean ~3, std ~2

    def stats(t):
        return f"mean {t.mean().item():+.3f}  std {t.numpy().std():.3f}"

    with mg.no_grad():
        train_out = bn(batch)  # also moves the running stats 10% of the way towards the batch's
        print(f"  input:                     {stats(batch)}")
        print(f"  train mode (batch stats):  {stats(train_out)}")
        running = ", ".join(f"{v:.3f}" for v in bn.running_mean.numpy())
        print(f"  running mean after 1 batch: [{running}]  (about 0.9 * 0 + 0.1 * 3)")
        bn.eval()
        print(f"  eval mode after 1 batch:   {stats(bn(batch))}   <- running stats not warmed up")
        bn.train()
        for _ in range(10 if quick else 50):
            bn(mg.randn(16, 2, 4, 4) * 2.0 + 3.0)
        bn.eval()
        eval_out = bn(batch)
        print(f"  eval mode after {int(bn.num_batches_tracked.item())} batches: {stats(eval_out)}")

        # In train mode one image's output depends on the rest of its batch; in eval it does not.
        bn.train()
        first = batch[:1]
        with_batch_a = bn(mg.cat([first, batch[1:8]]))[:1]
        with_batch_b = bn(mg.cat([first, batch[8:] * 0.5]))[:1]
        bn.eval()
        alone = bn(first)
        in_batch = bn(batch)[:1]
    gap_train = max_diff(with_batch_a, with_batch_b)
    gap_eval = max_diff(alone, in_batch)
    print(f"  same image, two different batches, train mode: outputs differ by {gap_train:.3f}")
    print(f"  same image, alone vs in a batch, eval mode:    outputs differ by {gap_eval:.3g}")
    return gap_train, gap_eval


def leaky_relu_demo():
    """6. LeakyReLU(0.2) lets a fifth of the signal (and of the gradient) through below zero."""
    print("\n6. ReLU vs LeakyReLU(0.2) and their gradients")
    x = mg.tensor([-2.0, -0.5, 0.5, 2.0], requires_grad=True)
    (g_relu,) = mg.grad(mg.relu(x).sum(), x)
    (g_leaky,) = mg.grad(F.leaky_relu(x, 0.2).sum(), x)
    def row(t):
        return " ".join(f"{v:5.2f}" for v in t.numpy())

    print(f"  x                   {row(x)}")
    print(f"  relu(x)             {row(mg.relu(x))}   gradient {row(g_relu)}")
    print(f"  leaky_relu(x, 0.2)  {row(F.leaky_relu(x, 0.2))}   gradient {row(g_leaky)}")
    # A ReLU unit stuck below zero passes no gradient back; in D that would cut off part of the
    # signal G learns from, which is why DCGAN's discriminator uses the leaky version.


def dcgan_generator(latent=100):
    return nn.Sequential(
        nn.ConvTranspose2d(latent, 256, 7, 1, 0, bias=False), nn.BatchNorm2d(256), nn.ReLU(),
        nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
        nn.ConvTranspose2d(128, 1, 4, 2, 1), nn.Tanh(),
    )


def dcgan_discriminator():
    return nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
        nn.Conv2d(128, 1, 7, 1, 0),
    )


def short(layer):
    """A layer's name with the numbers that decide its output shape."""
    name = type(layer).__name__
    if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
        (k, _), (s, _), (p, _) = layer.kernel_size, layer.stride, layer.padding
        return f"{name}({layer.in_channels}, {layer.out_channels}, k={k}, s={s}, p={p})"
    if isinstance(layer, nn.BatchNorm2d):
        return f"{name}({layer.num_features})"
    return repr(layer)


def trace(model, x):
    """Run ``x`` through a Sequential layer by layer, printing each output shape."""
    print(f"    {'input':<40} {str(x.shape):<18}")
    for layer in model:
        x = layer(x)
        params = sum(p.numel() for p in layer.parameters())
        print(f"    {short(layer):<40} {str(x.shape):<18}  {params:>9,} parameters")
    return x


def dcgan_shapes():
    """7. Shapes through lesson 04's networks: noise (N, 100, 1, 1) -> image -> one logit."""
    print("\n7. Shapes through the DCGAN of lesson 04 (batch of 4)")
    G, D = dcgan_generator(), dcgan_discriminator()
    with mg.no_grad():
        print("  generator: 1x1 -> 7x7 (k=7, s=1, p=0) -> 14x14 -> 28x28 (k=4, s=2, p=1 doubles)")
        images = trace(G, mg.randn(4, 100, 1, 1))
        print("  discriminator: 28x28 -> 14x14 -> 7x7 (k=4, s=2, p=1 halves) -> 1x1 (k=7)")
        logits = trace(D, images)
    return images.shape, logits.shape


def picture(image, path):
    """An image, its unfold matrix, and what a few kernels (conv and transposed conv) make of it.

    ``image`` is (1, 1, 28, 28) in [0, 1], so zero padding matches the black background."""
    panels = {"digit 28x28": image[0, 0]}
    cols = mg.unfold(image, kernel_size=4, stride=2, padding=1)  # (1, 16, 196)
    panels["unfold, k=4 s=2 p=1: 16 x 196 matrix"] = cols[0]
    windows = cols[0].T.reshape(196, 1, 4, 4) * 2 - 1  # each column is one 4x4 window
    panels["its 196 columns as 4x4 windows"] = viz.make_grid(windows, nrow=14, padding=1)
    kernels = {
        "vertical edges (conv 3x3)": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
        "horizontal edges (conv 3x3)": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    }
    for name, k in kernels.items():
        panels[name] = F.conv2d(image, mg.tensor(k).float().reshape(1, 1, 3, 3), padding=1)[0, 0]
    # The same blur as a matrix product: one kernel row times the unfold matrix above.
    blur = mg.ones(1, 16) / 16
    small = (blur @ cols).reshape(1, 1, 14, 14)
    panels["blur 4x4, stride 2: 14x14"] = small[0, 0]
    up = F.conv_transpose2d(small, mg.ones(1, 1, 4, 4) / 4, stride=2, padding=1)
    panels["back up to 28x28 (conv_transpose k=4 s=2 p=1)"] = up[0, 0]
    viz.plot_images({name: p.numpy() if hasattr(p, "numpy") else p for name, p in panels.items()},
                    path, ncols=4,
                    title="A convolution is a matrix product with the unfolded image")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Lesson 02: layers from unfold/fold to the DCGAN")
    parser.add_argument("--dataset", choices=("digits", "mnist", "fashion-mnist"), default="digits",
                        help="where the pictured image comes from (default digits, built in)")
    parser.add_argument("--data-root", default=None, help="folder with the MNIST files")
    parser.add_argument("--out", default=os.path.join("runs", "02_layers"))
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="fewer BatchNorm batches (for smoke tests)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    mg.manual_seed(args.seed)

    im2col_by_hand()
    sizes_ok = output_sizes()
    grads_ok = gradient_check()
    gap_train, gap_eval = batch_norm_modes(args.quick)
    leaky_relu_demo()
    image_shape, logit_shape = dcgan_shapes()

    data = load_dataset(args.dataset, root=args.data_root)
    image = mg.tensor(data.images[:1].astype("float32") / 255)
    path = os.path.join(args.out, "layers.png")
    picture(image, path)
    with open(os.path.join(args.out, "metrics.json"), "w") as fh:
        json.dump({"output_sizes_ok": sizes_ok, "gradcheck": grads_ok,
                   "batchnorm_train_gap": gap_train, "batchnorm_eval_gap": gap_eval,
                   "generator_output": list(image_shape),
                   "discriminator_output": list(logit_shape)},
                  fh, indent=2)
    print(f"\nWrote {path}")


if __name__ == "__main__":
    main()
