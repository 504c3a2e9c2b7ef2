"""Training data: one data-spec grammar (`parse_spec`) and `load(spec) -> Dataset` for
images, the bundled MNIST subset, IDX files, toy sets and point files.

See docs/DATA.md for the spec table, the image conventions and the MNIST provenance.
"""

from ._dataset import Dataset, EmpiricalSampler, LabelledSampler, from_image_array, from_points, load
from ._files import check_regular_file, read_npy, sniff
from ._fingerprint import CHANGED_DATA_FLAG, absolute_spec, check_data_unchanged, data_fingerprint
from ._images import idx_image, mnist_bundle, mnist_image, read_idx, read_image
from ._pixels import to_image_units
from ._points import MAX_ABS_COORDINATE, check_rows, read_points
from ._spec import TOY_NAMES, DataSpec, escape_path, parse_spec
from ._toy import ToySampler, toy_target

__all__ = [
    "parse_spec",
    "load",
    "DataSpec",
    "Dataset",
    "TOY_NAMES",
    "escape_path",
    "from_image_array",
    "from_points",
    "read_image",
    "read_points",
    "read_idx",
    "idx_image",
    "mnist_image",
    "mnist_bundle",
    "toy_target",
    "ToySampler",
    "EmpiricalSampler",
    "LabelledSampler",
    "to_image_units",
    "absolute_spec",
    "data_fingerprint",
    "check_data_unchanged",
    "CHANGED_DATA_FLAG",
    "check_regular_file",
    "read_npy",
    "sniff",
    "check_rows",
    "MAX_ABS_COORDINATE",
]
