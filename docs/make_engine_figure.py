"""Draws docs/images/engine_unfold_fold.png: an image, its unfold (im2col) matrix, and
fold(unfold(x)) / x, which counts how many kernel windows cover each pixel.

    python docs/make_engine_figure.py
"""
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import minigan as mg

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    x = mg.tensor(np.arange(1, 37, dtype=np.float32).reshape(1, 1, 6, 6))
    cols = mg.unfold(x, 3, stride=1, padding=1)        # (1, 9, 36)
    back = mg.fold(cols, (6, 6), 3, stride=1, padding=1)
    coverage = back.numpy()[0, 0] / x.numpy()[0, 0]

    figure = Figure(figsize=(12, 3.6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 3, gridspec_kw={"width_ratios": [1, 3.2, 1]})
    panels = [
        (x.numpy()[0, 0], "x: a 6x6 image (values 1..36)"),
        (cols.numpy()[0], "unfold(x, 3, padding=1): one column per window (9 x 36)"),
        (coverage, "fold(unfold(x)) / x:\nwindows covering each pixel"),
    ]
    for ax, (image, title) in zip(axes, panels):
        ax.imshow(image, cmap="viridis", aspect="auto" if image.shape[1] > 10 else "equal")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for (r, c), v in np.ndenumerate(coverage):
        axes[2].text(c, r, f"{v:.0f}", ha="center", va="center", color="white", fontsize=9)
    figure.tight_layout()
    figure.savefig(os.path.join(HERE, "images", "engine_unfold_fold.png"))


if __name__ == "__main__":
    main()
