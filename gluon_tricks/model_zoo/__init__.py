"""Model zoo: the paper's networks as Gluon HybridBlocks, weight-compatible with GluonCV."""
from ._registry import get_model, get_model_list, register  # noqa: F401
from . import resnet, mobilenet, inception  # noqa: F401  (register their models)
from .resnet import ResNetV1  # noqa: F401
from .mobilenet import MobileNet  # noqa: F401
from .inception import Inception3  # noqa: F401
from .init import PaperInit, get_initializer  # noqa: F401
