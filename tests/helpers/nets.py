"""Networks prepared for comparisons: weights and BatchNorm statistics random enough that two
implementations which differ give different outputs."""
import mxnet as mx
import numpy as np
from mxnet.gluon import nn


def randomize(net, x, seed=0):
    """Xavier weights, then random BN affine parameters, biases and running statistics.

    Running statistics drawn blindly (e.g. var ~ U(0.5, 1.5)) make the signal vanish through
    the depthwise convs and every sample gives the same output; so each BN's running mean and
    variance are set from the batch statistics of its actual input, randomly perturbed per
    channel, in one calibration pass (forward pre-hooks run before the layer computes).
    """
    mx.random.seed(seed)
    rng = np.random.RandomState(seed)
    net.initialize(mx.init.Xavier())
    net(x)  # finishes deferred initialization (GluonCV's layers infer their input channels)
    for key, param in net._collect_params_with_prefix().items():
        if key.endswith('gamma'):
            param.set_data(mx.nd.array(rng.uniform(0.5, 1.5, size=param.shape)))
        elif key.endswith(('beta', 'bias')):
            param.set_data(mx.nd.array(rng.normal(0, 0.2, size=param.shape)))

    def calibrate(block, inputs):
        data = inputs[0].asnumpy().astype('float64')
        mean, var = data.mean(axis=(0, 2, 3)), data.var(axis=(0, 2, 3))
        block.running_mean.set_data(
            mx.nd.array(mean + rng.normal(0, 0.2, size=mean.shape) * np.sqrt(var)))
        block.running_var.set_data(mx.nd.array(var * rng.uniform(0.5, 1.5, size=var.shape)))

    handles = [b.register_forward_pre_hook(calibrate)
               for b in walk(net) if isinstance(b, nn.BatchNorm)]
    assert handles
    net(x)
    for handle in handles:
        handle.detach()


def walk(block):
    """``block`` and every block under it, depth first."""
    yield block
    for child in block._children.values():
        yield from walk(child)
