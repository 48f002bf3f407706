"""The paper's parameter initialisation (section 2.1)."""
import mxnet as mx

__all__ = ['PaperInit', 'get_initializer']


@mx.init.register
class PaperInit(mx.init.Initializer):
    """Section 2.1: conv and dense weights ~ U[-a, a] with a = sqrt(6 / (d_in + d_out)),
    biases 0, BatchNorm gamma 1 and beta 0 (running mean 0, variance 1).

    ``d_in``/``d_out`` are the fan-in/fan-out of the layer (channels x kernel area), the
    Xavier uniform rule. Parameters whose layer set their own initializer keep it: that is
    how zero gamma (section 3.1) survives, through ``gamma_initializer='zeros'`` on the
    last BN of each residual block.
    """

    def __init__(self):
        super(PaperInit, self).__init__()
        self._xavier = mx.init.Xavier(rnd_type='uniform', factor_type='avg', magnitude=3)

    def _init_weight(self, name, arr):
        # Xavier(avg, magnitude 3): a = sqrt(3 / ((d_in + d_out) / 2)) = sqrt(6 / (d_in + d_out))
        self._xavier._init_weight(name, arr)

    def _init_bias(self, _, arr):
        arr[:] = 0.0

    def _init_gamma(self, _, arr):
        arr[:] = 1.0

    def _init_beta(self, _, arr):
        arr[:] = 0.0


def get_initializer(name='paper'):
    """Return an initializer by name.

    Parameters
    ----------
    name : {'paper', 'msra'}
        ``'paper'``: :class:`PaperInit` (Xavier uniform, section 2.1). ``'msra'``: GluonCV's
        training script choice, ``MSRAPrelu`` (Kaiming normal, fan-in).
    """
    if name == 'paper':
        return PaperInit()
    if name == 'msra':
        return mx.init.MSRAPrelu()
    raise ValueError("unknown initializer %r; use 'paper' (Xavier uniform, the paper's "
                     "section 2.1) or 'msra' (GluonCV's MSRAPrelu)" % (name,))
