import os

import numpy as np
import pytest

import minigan as mg
from minigan import classifier, io
from minigan.classifier import (
    FEATURES, Classifier, as_model_input, cache_path, load_classifier, load_or_train,
    make_classifier, save_classifier, train_classifier,
)
from minigan.data import Digits


@pytest.fixture(scope="module")
def small_digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return Digits(3000, seed=0, root=root), Digits(500, seed=1, root=root)


@pytest.fixture(scope="module")
def trained(small_digits):
    train, test = small_digits
    return train_classifier(train, test, epochs=2)


@pytest.mark.parametrize("channels, size", [(1, 28), (3, 32)])
def test_make_classifier_maps_images_to_features_and_logits(channels, size):
    net = make_classifier(channels, classes=4, image_size=size)
    x = mg.randn(2, channels, size, size)
    assert net[:-1](x).shape == (2, FEATURES)
    assert net(x).shape == (2, 4)


def test_as_model_input_maps_pixels_to_the_tanh_range_and_keeps_floats():
    pixels = np.array([0, 255, 51], np.uint8).reshape(1, 1, 1, 3)
    np.testing.assert_allclose(as_model_input(pixels).ravel(), [-1, 1, -0.6], atol=1e-6)
    floats = np.array([-0.25, 0.5], np.float32).reshape(1, 1, 1, 2)
    np.testing.assert_array_equal(as_model_input(floats), floats)


def test_training_learns_the_digits(trained, small_digits):
    _, test = small_digits
    assert trained.accuracy == trained.score(test.images, test.labels)
    assert trained.accuracy > 0.9  # ten classes: chance is 0.1
    assert trained.dataset == "digits" and trained.input_shape == (1, 28, 28)


def test_readings_agree_with_each_other(trained, small_digits):
    images = small_digits[1].images[:50]
    features, probs, logits = trained.features(images), trained.probs(images), trained.logits(images)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1, rtol=1e-12)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_array_equal(trained.predict(images), logits.argmax(axis=1))
    # the same images as floats in [-1, 1], in other chunk sizes, read the same
    floats = images.astype(np.float32) / 127.5 - 1
    np.testing.assert_allclose(Classifier(trained.net, "digits", (1, 28, 28), range(10), chunk=7)
                               .features(floats), features, atol=1e-5)


def test_a_saved_classifier_loads_back_identical(trained, small_digits, tmp_path):
    path = tmp_path / "judge.npz"
    save_classifier(trained, path)
    loaded = load_classifier(path)
    images = small_digits[1].images[:20]
    np.testing.assert_array_equal(loaded.logits(images), trained.logits(images))
    assert (loaded.accuracy, loaded.dataset, loaded.classes) == (trained.accuracy, "digits", trained.classes)


def test_load_classifier_refuses_another_version(tmp_path):
    path = tmp_path / "old.npz"
    io.save({"version": classifier.VERSION + 1}, path)
    with pytest.raises(ValueError, match="not a version"):
        load_classifier(path)


def test_load_or_train_trains_once_then_reads_the_cache(small_digits, tmp_path, monkeypatch):
    train, test = small_digits
    monkeypatch.setattr(classifier, "load_dataset", lambda name, root=None, train=True: (
        small_digits[0] if train else small_digits[1]))
    trainings = []

    def quick_training(train_set, test_set):
        trainings.append(len(train_set))
        return train_classifier(train_set.first(500), test_set, epochs=1)

    monkeypatch.setattr(classifier, "train_classifier", quick_training)
    first = load_or_train("digits", root=tmp_path, verbose=False)
    assert os.path.exists(cache_path("digits", tmp_path)) and trainings == [3000]
    second = load_or_train("digits", root=tmp_path, verbose=False)
    assert trainings == [3000]
    np.testing.assert_array_equal(second.logits(test.images[:10]), first.logits(test.images[:10]))
    # a damaged file is trained again (and replaced)
    with open(cache_path("digits", tmp_path), "wb") as f:
        f.write(b"not an archive")
    load_or_train("digits", root=tmp_path, verbose=False)
    assert trainings == [3000, 3000]
    assert load_classifier(cache_path("digits", tmp_path)).dataset == "digits"
