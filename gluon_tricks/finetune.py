"""Fine-tuning: a new run that starts from trained weights (``--initial-checkpoint``).

Not a resume: the optimizer, the schedule and the random streams start afresh; only the
weights come from the file. A classifier of another size (``--num-classes`` or the data's
classes differ from the file's) is left out of the load and re-initialised with the run's
initializer, and the log says so. ``--freeze-backbone`` trains the classifier alone;
``--backbone-lr-mult`` scales the learning rate of everything but the classifier.
"""
import os
import tempfile

import mxnet as mx

from .errors import UserError
from .model_zoo.io import check_recorded_digest, describe_mismatch, load_params

__all__ = ['FineTuneError', 'classifier_of', 'load_initial', 'set_backbone_training']

#: The classifier's keys in the files of our models and GluonCV's (ResNet-B..S: fc,
#: ResNet-A in GluonCV's layout, MobileNet and Inception-V3: output).
CLASSIFIER_KEYS = ('fc.weight', 'fc.bias', 'output.weight', 'output.bias')


class FineTuneError(UserError, ValueError):
    """An ``--initial-checkpoint`` that does not fit the model."""


def classifier_of(net):
    """The network's classifier block (``fc`` or ``output``)."""
    for name in ('fc', 'output'):
        block = getattr(net, name, None)
        if isinstance(block, mx.gluon.Block):
            return block
    raise FineTuneError('%s has no classifier block named fc or output'
                        % getattr(net, 'model_name', type(net).__name__))


def _params_file(source):
    if os.path.isdir(source):
        from .inference import resolve_checkpoint   # a run or checkpoint directory, verified
        return resolve_checkpoint(source)[0]
    if not os.path.isfile(source):
        raise FineTuneError('--initial-checkpoint %s does not exist' % source)
    return source


def load_initial(net, source, ctx, init, log):
    """Load the weights of ``source`` (a ``.params`` file of ours or GluonCV's, a checkpoint
    directory or a run directory) into the initialised ``net``; a classifier of another
    shape is re-initialised with ``init``. Returns the file read."""
    path = _params_file(source)
    check_recorded_digest(path)
    try:
        arrays = {k.split(':', 1)[-1]: v for k, v in mx.nd.load(path).items()}
    except (mx.base.MXNetError, AttributeError) as err:
        raise FineTuneError('--initial-checkpoint %s is not a params file of named arrays (%s)'
                            % (path, str(err).strip().splitlines()[0][:200]))
    head = classifier_of(net)
    want = tuple(head.weight.shape)
    have = next((tuple(arrays[k].shape) for k in ('fc.weight', 'output.weight')
                 if k in arrays), None)
    if have is None or have == want:
        try:
            load_params(net, path, ctx=ctx)
        except (AssertionError, ValueError, mx.base.MXNetError) as err:
            raise FineTuneError('--initial-checkpoint %s does not fit --model %s: %s'
                                % (path, getattr(net, 'model_name', ''),
                                   describe_mismatch(net, arrays) or str(err)[:300]))
        log('fine-tuning from %s: every parameter loaded (optimizer and schedule start afresh)'
            % path)
        return path
    body = {k: v for k, v in arrays.items() if k not in CLASSIFIER_KEYS}
    tmp = os.path.join(tempfile.gettempdir(), 'gluon-tricks-initial-%d.params' % os.getpid())
    mx.nd.save(tmp, body)
    try:
        detail = describe_mismatch(net, body)
        expected = {n for n in net._collect_params_with_prefix()
                    if n.startswith(('fc.', 'output.'))}
        missing = set(net._collect_params_with_prefix()) - set(body)
        if missing - expected or (detail and 'shape' in detail):
            raise FineTuneError('--initial-checkpoint %s does not fit --model %s: %s'
                                % (path, getattr(net, 'model_name', ''), detail))
        load_params(net, tmp, ctx=ctx, allow_missing=True)
    finally:
        os.remove(tmp)
    head.initialize(init, ctx=ctx, force_reinit=True)
    log('fine-tuning from %s: %d arrays loaded; the classifier was re-initialised (%d classes '
        'in the file, %d now); optimizer and schedule start afresh'
        % (path, len(body), have[0], want[0]))
    return path


def set_backbone_training(net, freeze=False, lr_mult=1.0):
    """Freeze everything but the classifier (``grad_req='null'``), or scale its learning
    rate by ``lr_mult`` (``Parameter.lr_mult``); returns how many parameters it changed."""
    head = set(id(p) for p in classifier_of(net).collect_params().values())
    changed = 0
    for p in net.collect_params().values():
        if id(p) in head or p.grad_req == 'null':
            continue
        if freeze:
            p.grad_req = 'null'
        else:
            p.lr_mult = float(lr_mult)
        changed += 1
    return changed
