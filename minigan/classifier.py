"""A small convolutional classifier trained on a real dataset: the judge behind ``minigan.metrics``.

FID measures generated images in the feature space of an Inception network trained on ImageNet.
This course has no such network, and ImageNet features say little about 28x28 digits anyway, so
it trains its own: a CNN that sorts the real training images into their classes. Its last hidden
layer (``FEATURES`` numbers per image) is where the Fréchet distance and precision/recall
compare samples with real images, and its softmax is what the Inception-Score-like score and
the class coverage read.

    judge = load_or_train("digits")          # trained once, then read from the cache
    judge.features(images)                   # (N, 128) float64, unit length
    judge.probs(images)                      # (N, 10) softmax

Images may be uint8 (0..255, as datasets hold them) or floats in [-1, 1] (as generators make
them), shaped (N, C, H, W). The trained weights live in
``<cache_dir(root)>/classifiers/<dataset>-cnn-v<VERSION>.npz``, written with ``minigan.io.save``
(no pickle, atomic), next to the test accuracy they reached.
"""
import os
import sys
import zipfile

from . import F, cat, float64, io, manual_seed, nn, no_grad, optim, tensor
from .data import batches, cache_dir, load_dataset, to_tanh_range
from .progress import progress

VERSION = 1  # bump when the architecture or the recipe changes, so old caches are not reused
FEATURES = 128
EPOCHS = 4
BATCH_SIZE = 128
LEARNING_RATE = 1e-3


def make_classifier(channels=1, classes=10, image_size=28):
    """Two strided convolutions, then a hidden layer of ``FEATURES`` units, then the class logits.

        x (1x28x28) -> Conv2d(1, 32, 4, stride 2, pad 1) -> ReLU     32x14x14
                    -> Conv2d(32, 64, 4, stride 2, pad 1) -> ReLU    64x7x7
                    -> Linear(3136, 128) -> ReLU                     the features
                    -> Linear(128, 10)                               class logits

    Each strided convolution halves the side, which is the down-sampling a max-pool would do,
    learnt instead of fixed."""
    side = image_size // 4
    return nn.Sequential(
        nn.Conv2d(channels, 32, 4, 2, 1), nn.ReLU(),
        nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64 * side * side, FEATURES), nn.ReLU(),
        nn.Linear(FEATURES, classes),
    )


def as_model_input(images):
    """uint8 images -> floats in [-1, 1] (the range of the data loader and of tanh generators);
    float images pass through unchanged."""
    images = io.as_numpy(images)
    if images.dtype.kind == "u":
        return to_tanh_range(images, "float32")
    return images.astype("float32", copy=False)


class Classifier:
    """A trained network with the readings the metrics need. ``accuracy`` is the test accuracy
    it reached when trained (None if unknown)."""

    def __init__(self, net, dataset, input_shape, classes, accuracy=None, chunk=500):
        self.net, self.dataset, self.accuracy, self.chunk = net, dataset, accuracy, chunk
        self.input_shape, self.classes = tuple(input_shape), tuple(classes)
        self.body = net[:-1]  # every layer but the last: image -> features

    def _run(self, model, images):
        images = as_model_input(images)
        was_training = self.net.training
        self.net.eval()
        try:
            with no_grad():
                out = cat([model(tensor(images[i:i + self.chunk])) for i in range(0, len(images), self.chunk)])
        finally:
            self.net.train(was_training)
        return out.numpy().astype("float64")

    def features(self, images):
        """The penultimate layer scaled to unit length: (N, FEATURES) float64.

        A feature vector's direction says what the network sees (a 3, an 8); its length
        mostly says how strongly it fires, which bold strokes do more than faint ones. Only
        the direction is kept, so that distances compare shapes, not ink."""
        features = self._run(self.body, images)
        norms = (features * features).sum(axis=1, keepdims=True) ** 0.5
        return features / (norms + (norms == 0))  # an all-zero row stays zero

    def logits(self, images):
        return self._run(self.net, images)

    def probs(self, images):
        """Softmax over classes, computed in float64 from the logits: (N, classes)."""
        return F.softmax(tensor(self.logits(images), dtype=float64), dim=1).numpy()

    def predict(self, images):
        return self.logits(images).argmax(axis=1)

    def score(self, images, labels):
        """The fraction of ``images`` whose predicted class is ``labels``."""
        return float((self.predict(images) == io.as_numpy(labels)).mean())


def train_classifier(train, test, epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LEARNING_RATE, seed=0):
    """Train ``make_classifier`` on ``train`` with cross-entropy and Adam; returns a Classifier
    whose ``accuracy`` is measured on ``test``.

    Every epoch visits the training images once in a new order. The learning rate falls
    linearly to a tenth over the run, which settles the weights at the end."""
    manual_seed(seed)
    net = make_classifier(train.channels, len(train.classes), train.image_size)
    opt = optim.Adam(net.parameters(), lr=lr)
    steps = epochs * (len(train) // batch_size)
    bar = progress(steps, desc=f"classifier ({train.name})")
    step = 0
    for _ in range(epochs):
        for x, y in batches(train, batch_size):
            for group in opt.param_groups:
                group["lr"] = lr * (1 - 0.9 * step / steps)
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            step += 1
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    shape = (train.channels, train.image_size, train.image_size)
    judge = Classifier(net, train.name, shape, train.classes)
    judge.accuracy = judge.score(test.images, test.labels)
    return judge


def cache_path(dataset, root=None):
    return os.path.join(cache_dir(root), "classifiers", f"{dataset}-cnn-v{VERSION}.npz")


def save_classifier(judge, path):
    io.save({"version": VERSION, "dataset": judge.dataset, "accuracy": judge.accuracy,
             "input_shape": judge.input_shape, "classes": judge.classes,
             "state": judge.net.state_dict()}, path)


def load_classifier(path):
    """The Classifier saved at ``path``; raises ValueError if the file is not one of this version."""
    saved = io.load(path)
    if not isinstance(saved, dict) or saved.get("version") != VERSION:
        raise ValueError(f"{path} is not a version-{VERSION} classifier")
    channels, size, _ = saved["input_shape"]
    net = make_classifier(channels, len(saved["classes"]), size)
    net.load_state_dict(saved["state"])
    return Classifier(net, saved["dataset"], saved["input_shape"], saved["classes"], saved["accuracy"])


def load_or_train(dataset="digits", root=None, verbose=True):
    """The classifier for ``--dataset``: read from the cache, or trained on the training set
    (a minute or two on a 2-core CPU) and cached, once per dataset and data folder."""
    train = load_dataset(dataset, root=root)  # may fall back from MNIST to Digits: train.name says
    path = cache_path(train.name, root)
    try:
        return load_classifier(path)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        pass  # missing, damaged or from another version: train it again
    if verbose:
        print(f"training the {train.name} classifier once; it will be cached at {path}", file=sys.stderr)
    judge = train_classifier(train, load_dataset(dataset, root=root, train=False))
    try:
        save_classifier(judge, path)
    except OSError as exc:  # a read-only cache costs a retraining next time, nothing else
        print(f"minigan: could not cache the classifier at {path} ({exc})", file=sys.stderr)
    return judge
