"""The command-line flags every lesson shares: ``lesson_parser`` (--steps, --batch-size, --dataset,
--data-root, --train-size, --no-judge, --out, --seed, --quick, --resume) and the argparse types
that refuse counts below 1 and negative seeds with the flag and the value.
(``minigan.experiment`` passes them on, beside the run they set up.)"""
import argparse
import os

DATASET_CHOICES = ("digits", "mnist", "fashion-mnist")


def positive_int(text):
    """argparse type: an integer >= 1 (--steps, --batch-size, ...)."""
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text):
    """argparse type: an integer >= 0 (--seed)."""
    return _int_at_least(text, 0, "an integer >= 0")


def _int_at_least(text, low, expected):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


class LessonParser(argparse.ArgumentParser):
    """Resolves --steps after parsing: as given, else ``quick_steps`` under --quick, else the
    lesson's default."""

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        if parsed.steps is None:
            parsed.steps = parsed.quick_steps if parsed.quick else parsed.default_steps
        return parsed


def lesson_parser(name, description, steps, batch_size, datasets=DATASET_CHOICES, quick_steps=12):
    """The flags every GAN lesson takes; ``--quick`` runs ``quick_steps`` steps for smoke tests
    (unless --steps is given too). ``datasets`` (None: no dataset flags) brings --dataset,
    --data-root, --train-size and --no-judge. Counts must be positive and the seed >= 0: anything else is
    an argparse error that names the flag and the value."""
    parser = LessonParser(
        prog=f"lessons/{name}.py", description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=positive_int, default=None,
                        help=f"training steps in all, counted from the start of the run even "
                             f"with --resume (default {steps})")
    parser.add_argument("--batch-size", type=positive_int, default=batch_size,
                        help=f"default {batch_size}")
    if datasets:
        parser.add_argument("--dataset", choices=datasets, default=datasets[0],
                            help=f"default {datasets[0]} (built in, works offline)")
        parser.add_argument("--data-root", default=None,
                            help="folder with the MNIST files (default $MINIGAN_DATA or ~/.cache/minigan)")
        parser.add_argument("--train-size", type=positive_int, default=None, metavar="N",
                            help="train on the first N images of the dataset (default: all)")
        parser.add_argument("--no-judge", action="store_true",
                            help="read diversity by cosine and pixel spread only, without lesson "
                                 "10's classifier (otherwise trained once per dataset, about a "
                                 "minute, and cached)")
    parser.add_argument("--out", default=os.path.join("runs", name), help="run directory")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--quick", action="store_true", help=f"{quick_steps} steps, for smoke tests")
    parser.add_argument("--resume", action="store_true", help="continue from the run's checkpoint")
    parser.set_defaults(quick_steps=quick_steps, default_steps=steps)
    return parser
