"""Model zoo: the paper's networks as Gluon HybridBlocks, weight-compatible with GluonCV."""
from ._registry import get_model, get_model_list, register  # noqa: F401
from . import resnet  # noqa: F401  (registers resnet*_v1, _v1b ... _v1s)
from .resnet import ResNetV1  # noqa: F401
from .init import PaperInit  # noqa: F401

try:  # registered by their own modules once they exist
    from . import mobilenet  # noqa: F401
except ImportError:  # pragma: no cover
    pass
try:
    from . import inception  # noqa: F401
except ImportError:  # pragma: no cover
    pass
