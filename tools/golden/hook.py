"""Run a training script with a per-step trace: ``python -m tools.golden.hook OUT SCRIPT ARGS``.

After every optimizer update (``gluon.Trainer._update``, which every trainer of the three
training scripts goes through, Horovod's included) one JSON line is appended to
``OUT`` (``OUT.rank<r>`` under Horovod): the update's number, its learning rate, the float64
sum of the loss heads given to ``backward`` since the previous update, and a digest of every
trained parameter (sorted digests of the arrays' bytes: independent of parameter names and
order). Nothing here changes a value the script computes.
"""
import hashlib
import json
import os
import runpy
import sys


def _digest(arrays):
    parts = sorted(hashlib.sha1(a.tobytes()).hexdigest() for a in arrays)
    return hashlib.sha1(''.join(parts).encode()).hexdigest()[:20]


def install(out):
    import mxnet as mx
    from mxnet import autograd, gluon
    state = {'losses': [], 'n': 0, 'out': out}

    def note_heads(heads):
        heads = heads if isinstance(heads, (list, tuple)) else [heads]
        for h in heads:
            state['losses'].append(float(h.asnumpy().astype('float64').sum()))

    orig_backward = autograd.backward

    def backward(heads, *args, **kwargs):
        note_heads(heads)
        return orig_backward(heads, *args, **kwargs)
    autograd.backward = backward
    mx.autograd.backward = backward
    orig_nd_backward = mx.nd.NDArray.backward

    def nd_backward(self, *args, **kwargs):
        note_heads(self)
        return orig_nd_backward(self, *args, **kwargs)
    mx.nd.NDArray.backward = nd_backward

    orig_update = gluon.Trainer._update

    def _update(self, *args, **kwargs):
        result = orig_update(self, *args, **kwargs)
        rank = os.environ.get('HOROVOD_RANK')
        path = state['out'] if rank is None else '%s.rank%s' % (state['out'], rank)
        arrays = [p.list_data()[0].asnumpy() for p in self._params if p.grad_req != 'null']
        state['n'] += 1
        record = {'update': state['n'], 'lr': repr(float(self.learning_rate)),
                  'loss': repr(sum(state['losses'])), 'heads': len(state['losses']),
                  'params': _digest(arrays)}
        state['losses'] = []
        with open(path, 'a') as f:
            f.write(json.dumps(record, sort_keys=True) + '\n')
        return result
    gluon.Trainer._update = _update


def main():
    out, script = sys.argv[1], sys.argv[2]
    install(out)
    sys.argv = [script] + sys.argv[3:]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name='__main__')


if __name__ == '__main__':
    main()
