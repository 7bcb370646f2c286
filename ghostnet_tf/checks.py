"""Argument checks shared by the whole library, and the error they raise.

`ArgumentError` names the Python argument that is wrong (`data_dir`, `formats`); the
command-line tools show the same sentence under their flag's name (--data-dir, --formats), so
neither a Python caller nor a shell user reads about an option they never saw. Pure Python:
layers and models use these checks too.
"""


class ArgumentError(ValueError):
    """A bad value of the argument `argument`: "`argument` PROBLEM", e.g.
    ArgumentError("batch_size", "must be a positive integer, got 0.")."""

    def __init__(self, argument, problem):
        self.argument, self.problem = argument, problem
        super().__init__(self.message(f"`{argument}`"))

    def message(self, name):
        """The sentence under another name for the argument, such as a command-line flag."""
        return f"{name} {self.problem}"


def first_line(error):
    """The first line of an exception's message, for one-line errors that quote another
    library's (torch's and httpx's run to several lines)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def is_positive_int(value):
    return not isinstance(value, bool) and isinstance(value, int) and value >= 1


def check_positive_int(argument, value, odd=False):
    """Return `value`, or raise ArgumentError unless it is a positive (odd) integer."""
    if not is_positive_int(value) or (odd and value % 2 == 0):
        kind = "a positive odd integer" if odd else "a positive integer"
        raise ArgumentError(argument, f"must be {kind}, got {value!r}.")
    return value


def check_input_shape(input_shape, min_size, channels=None):
    """Raise ArgumentError unless `input_shape` is (height, width, channels) with sides of at
    least `min_size` (or None) and, when given, `channels` channels."""
    if input_shape is None or len(input_shape) != 3:
        raise ArgumentError("input_shape",
                            f"must be (height, width, channels), got {input_shape!r}.")
    for size in input_shape[:2]:
        if size is not None and size < min_size:
            raise ArgumentError(
                "input_shape", f"{tuple(input_shape)} is smaller than the network's "
                               f"downsampling: height and width must be at least {min_size}.")
    if channels is not None and input_shape[2] != channels:
        raise ArgumentError(
            "input_shape", f"{tuple(input_shape)} has {input_shape[2]} channels; the model "
                           f"normalizes RGB images, so it needs {channels}.")


# How image files are read, checked here once for every caller (pipelines, registry, CLI,
# recipes): the resize of an evaluation transform and the label convention of TFRecords.
INTERPOLATIONS = ("bilinear", "bicubic")
LABEL_OFFSETS = ("auto", 0, 1)


def check_interpolation(value, argument="interpolation"):
    if value not in INTERPOLATIONS:
        raise ArgumentError(argument, f"must be one of {INTERPOLATIONS}, got {value!r}.")
    return value


def check_crop_pct(value, argument="crop_pct"):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ArgumentError(argument, f"must be in (0, 1], got {value!r}.")
    return value


def check_label_offset(value, argument="label_offset"):
    if value not in LABEL_OFFSETS or isinstance(value, bool):
        raise ArgumentError(argument, f"must be one of {LABEL_OFFSETS}, got {value!r}.")
    return value
