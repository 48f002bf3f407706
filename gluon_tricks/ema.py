"""Model EMA (timm's ``--model-ema``): an exponential moving average of the weights.

After every optimizer step ``shadow = decay * shadow + (1 - decay) * weight`` for every
parameter, BatchNorm statistics included (as timm's ``ModelEmaV2``); the shadow starts as
the initial (or restored) weights. It lives in float32 on the first device and is updated
with device operations only (no host synchronisation). The loop evaluates it beside the
model (``top1_ema``), every checkpoint stores it as ``net-ema.params`` (a plain params file
with the model's keys: evaluate.py, export.py and predict.py read it like ``net.params``) and
``--resume`` restores it exactly.
"""
import mxnet as mx

__all__ = ['ModelEMA', 'EMA_FILE']

#: The EMA weights in a checkpoint directory.
EMA_FILE = 'net-ema.params'


class ModelEMA(object):
    """The moving average of ``net``'s parameters.

    Parameters
    ----------
    net : mxnet.gluon.Block
        Initialised (shapes known).
    decay : float
        In [0, 1): the weight of the past (timm's default 0.9998).
    """

    FILE = EMA_FILE

    def __init__(self, net, decay=0.9998):
        if not 0 <= decay < 1:
            raise ValueError('--model-ema-decay must be in [0, 1), got %r' % (decay,))
        self.net, self.decay = net, float(decay)
        self.params = net._collect_params_with_prefix()
        self.ctx = next(iter(self.params.values())).list_ctx()[0]
        self.shadow = {k: p.data(self.ctx).astype('float32', copy=True)
                       for k, p in self.params.items()}
        self.num_updates = 0

    def update(self):
        """One step of the recursion, on the device."""
        for k, p in self.params.items():
            s = self.shadow[k]
            s *= self.decay
            s += p.data(self.ctx).astype('float32', copy=False) * (1.0 - self.decay)
        self.num_updates += 1

    def swap(self):
        """Exchange the model's weights and the EMA (call again to undo): evaluation of the
        EMA runs the model itself, hybridized graph included."""
        for k, p in self.params.items():
            current = p.data(self.ctx).astype('float32', copy=True)
            p.set_data(self.shadow[k].astype(p.dtype, copy=False))
            self.shadow[k] = current

    # -- checkpoints: JSON state and named arrays -----------------------------------------------
    def state_dict(self):
        return {'decay': self.decay, 'num_updates': self.num_updates}

    def load_state_dict(self, state):
        self.num_updates = int(state.get('num_updates', 0))

    def state_arrays(self):
        """The EMA under the keys the model's params files use (``file_keys``), on the CPU."""
        keys = self.net.file_keys() if hasattr(self.net, 'file_keys') else \
            {k: k for k in self.params}
        return {keys[k]: v.copyto(mx.cpu()) for k, v in self.shadow.items()}

    def load_state_arrays(self, arrays, where='the checkpoint'):
        keys = self.net.file_keys() if hasattr(self.net, 'file_keys') else \
            {k: k for k in self.params}
        missing = [k for k in self.params if keys[k] not in arrays]
        if missing:
            from .errors import UserError
            raise UserError('%s holds no EMA weights for %s (was it trained without '
                            '--model-ema?)' % (where, ', '.join(missing[:3])))
        for k in self.params:
            value = arrays[keys[k]]
            value = value if isinstance(value, mx.nd.NDArray) else mx.nd.array(value)
            self.shadow[k] = value.astype('float32').as_in_context(self.ctx)

