"""Worker processes that decode batches: :class:`WorkerLoader`, under the image loaders of
:mod:`.pipeline` and the Faster-RCNN and FCN loaders.

The workers are forked when a loader is made (before the caller builds its network: small,
quick forks, as Gluon's ``DataLoader`` does) and serve every pass that ends normally. They end
with their loader (:meth:`WorkerLoader.close`, garbage collection, ``atexit``), with the
process that forked them (``PR_SET_PDEATHSIG``: also when it is killed by SIGKILL) and with
any pass that does not finish (an error, a consumer that stops early): the next pass forks
new ones. No consumer waits on a worker without a bound:

* an exception in a worker (a damaged image) reaches the consumer as the same exception, the
  message of ``-j 0``, with the worker's traceback as its cause;
* a worker that dies without a word (out of memory, a crash in native code) is seen within a
  second, one that delivers nothing for :data:`WORKER_TIMEOUT` seconds (stuck reading a file)
  at that bound: :class:`DataWorkerError` naming the batch's files and what to do;
* the workers share no lock (a pipe pair each, batches dealt round-robin), so a dead one
  leaves none held, and ending them takes at most a moment (a ``None`` task, then SIGKILL);
* they ignore SIGINT and SIGTERM: both reach the whole process group (Ctrl-C, a batch
  system's preemption), and the training process, which decides, finishes its step with
  the batches they still deliver and writes its checkpoint first.
"""
import atexit
import io
import multiprocessing
import multiprocessing.util  # its atexit hook (joining children) must run after ours
import os
import pickle
import signal
import sys
import time
import traceback
import weakref

from ..errors import UserError

__all__ = ['WorkerLoader', 'DataWorkerError', 'SharedMemoryError', 'check_shared_memory',
           'WORKER_TIMEOUT']


#: Seconds a batch may take to arrive before :class:`DataWorkerError`: generous (a batch of
#: 256 ImageNet images takes seconds on one core). ``GLUON_TRICKS_DATA_TIMEOUT`` overrides it.
WORKER_TIMEOUT = 300.0

_LIVE = weakref.WeakSet()       # every worker set not yet ended


class DataWorkerError(UserError, RuntimeError):
    """A data worker process died without reporting an error, or delivered no batch in time;
    the message names the batch's samples and what to do."""


class SharedMemoryError(UserError, RuntimeError):
    """The batches the data workers keep in flight do not fit in shared memory (/dev/shm)."""


def check_shared_memory(batch_bytes, num_workers, name='', path='/dev/shm'):
    """Refuse, before any worker starts, a prefetch that does not fit in shared memory.

    A pass keeps ``2 * num_workers`` batches in flight (:class:`WorkerLoader`) and the
    consumer holds up to two more, each in its own shared-memory segment: a container's
    default 64 MB of ``/dev/shm`` holds less than one batch of 128 images at 224 px. Where
    ``path`` does not exist (not Linux) nothing is checked.
    """
    if num_workers < 1:
        return
    try:
        st = os.statvfs(path)
    except OSError:
        return
    need, free = (2 * num_workers + 2) * int(batch_bytes), st.f_bavail * st.f_frsize
    if need > free:
        raise SharedMemoryError(
            '%s: %d data workers keep %d batches of %.0f MB in shared memory (%.2f GB), but %s '
            'has %.2f GB free. Lower -j (or --batch-size), use -j 0 to decode in the training '
            'process, or give the machine more shared memory (docker run --shm-size=%dg)'
            % (name or 'the data', num_workers, 2 * num_workers + 2, batch_bytes / 1e6,
               need / 1e9, path, free / 1e9, max(1, -(-need // 2 ** 30) + 1)))


def _timeout():
    value = os.environ.get('GLUON_TRICKS_DATA_TIMEOUT', '').strip()
    try:
        return float(value) if value else WORKER_TIMEOUT
    except ValueError:
        raise ValueError('GLUON_TRICKS_DATA_TIMEOUT=%r is not a number of seconds (unset it for '
                         'the default, %g)' % (value, WORKER_TIMEOUT))


class WorkerLoader(object):
    """Batches of ``dataset`` for the key lists of ``batch_sampler``, decoded by
    ``num_workers`` processes (see the module notes); each ``iter(loader)`` is one pass and
    yields ``batchify_fn([dataset[k] for k in keys])`` for every ``keys`` of
    ``iter(batch_sampler)``, in order, the same with any number of workers.

    Parameters
    ----------
    dataset : object
        ``dataset[key]``; forked into the workers, never pickled. One with a method
        ``batch(keys, shared)`` (and no ``batchify_fn`` given) builds whole batches itself,
        in shared memory when ``shared`` (:class:`~.pipeline.AugmentedDataset`).
    batch_sampler : iterable of lists of keys, with ``len()``
    batchify_fn : callable, optional
        Default: Gluon's (its shared-memory version with workers).
    num_workers : int
        0: decode in the calling process. At most ``len(batch_sampler)`` are started.
    name : str
        The data (file or folder), in error messages.
    describe : callable, optional
        ``describe(keys) -> str`` naming the samples of a batch in error messages.
    timeout : float, optional
        Default :data:`WORKER_TIMEOUT` (or ``GLUON_TRICKS_DATA_TIMEOUT``).
    """

    def __init__(self, dataset, batch_sampler, batchify_fn=None, num_workers=0, name='',
                 describe=None, timeout=None):
        self.dataset, self.batch_sampler = dataset, batch_sampler
        self.num_workers = max(0, int(num_workers))
        self.batchify_fn, self.name, self.describe = batchify_fn, name, describe
        # a dataset with batch(keys, shared) builds its batches itself, in place
        self._assembles = batchify_fn is None and callable(getattr(dataset, 'batch', None))
        self.timeout = _timeout() if timeout is None else float(timeout)
        self._workers = None
        if self.num_workers:
            self._start()   # before the caller builds a network: small, quick forks

    def _start(self):
        from mxnet.gluon.data.dataloader import default_mp_batchify_fn
        size = min(self.num_workers, max(1, len(self.batch_sampler)))
        batchify = None if self._assembles else self.batchify_fn or default_mp_batchify_fn
        self._workers = _Workers(self.dataset, batchify, size, self.name, self.describe,
                                 self.timeout)
        weakref.finalize(self, self._workers.stop, False)   # the workers hold no ref to self
        return self._workers

    def __len__(self):
        return len(self.batch_sampler)

    def __iter__(self):
        return self._iterate()

    def close(self):
        """End the worker processes (a pass still running then raises); a later pass starts
        new ones."""
        if self._workers is not None:
            self._workers.stop(graceful=True)

    def _iterate(self):
        batches = iter(self.batch_sampler)
        if not self.num_workers:
            from mxnet.gluon.data.dataloader import default_batchify_fn
            batchify = self.batchify_fn or default_batchify_fn
            for keys in batches:
                yield self.dataset.batch(keys) if self._assembles else \
                    batchify([self.dataset[k] for k in keys])
            return
        keys = list(batches)
        workers = self._workers
        if workers is None or workers.closed or workers.busy:   # ended, or a pass left open
            if workers is not None:
                workers.stop(graceful=False)
            workers = self._start()
        workers.busy, done = True, False
        try:
            ahead = min(len(keys), 2 * workers.size)
            for k in range(ahead):
                workers.send(k, keys[k])
            for k in range(len(keys)):
                batch = workers.receive(k)
                if k + ahead < len(keys):
                    workers.send(k + ahead, keys[k + ahead])
                yield batch
            done = True
        finally:
            if done:                # every task answered: the workers serve the next pass
                workers.busy = False
            else:                   # an error, or the consumer left: tasks may be in flight
                workers.stop(graceful=False)


class _RemoteTraceback(Exception):
    """The traceback of an exception raised in a data worker (shown as its cause)."""

    def __str__(self):
        return self.args[0]


def _pickled_error(err):
    """An exception of a worker as bytes the consumer can load: the exception itself if it
    survives pickling, else a RuntimeError with its type and message."""
    tb = traceback.format_exc()
    try:
        data = pickle.dumps(err, pickle.HIGHEST_PROTOCOL)
        pickle.loads(data)
    except Exception:  # noqa: B902 - any exception that cannot travel
        data = pickle.dumps(RuntimeError('%s: %s' % (type(err).__name__, err)))
    return pickle.dumps((data, tb), pickle.HIGHEST_PROTOCOL)


def _exit_with_parent(parent):
    """Linux: SIGKILL this process when the process that forked it dies (also by SIGKILL)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:      # it died before prctl
        os._exit(1)


#: True in a worker process of this module. Such a worker must not reconfigure OpenCV's
#: threads: it was forked with OpenCV set to run sequentially (see :class:`_Workers`).
IN_WORKER = False


def _worker_main(dataset, batchify_fn, tasks, results, others, parent, np_state):
    """A worker: ``(index, keys)`` tasks in, ``b'B' + batch`` or ``b'E' + error`` out, until a
    ``None`` task or the end of the task pipe."""
    global IN_WORKER
    IN_WORKER = True                # OpenCV runs sequentially here (set before the fork)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, (signal.SIGINT, signal.SIGTERM))
    _exit_with_parent(parent)
    for conn in others:             # the consumer's ends of its and the earlier workers' pipes
        conn.close()
    from multiprocessing.reduction import ForkingPickler
    from mxnet.util import set_np
    set_np(shape=np_state[0], array=np_state[1])
    while True:
        try:
            task = tasks.recv()
        except EOFError:
            return
        if task is None:
            return
        try:
            batch = dataset.batch(task[1], shared=True) if batchify_fn is None else \
                batchify_fn([dataset[k] for k in task[1]])
            buf = io.BytesIO()
            ForkingPickler(buf, pickle.HIGHEST_PROTOCOL).dump(batch)   # NDArrays: shared memory
            del batch
            message = b'B' + buf.getvalue()
        except Exception as err:  # noqa: B902 - every error goes to the consumer
            message = b'E' + _pickled_error(err)
        try:
            results.send_bytes(message)
        except OSError:             # the consumer ended the pass: nobody to tell
            return


def _settle_engine():
    """Wait for MXNet's pending operations before a fork. MXNet's fork handler does the
    same (``atfork_prepare``: ``WaitForAll``) and, when an earlier asynchronous operation
    failed, ends the process with ``std::terminate`` (an abort, no message); waiting here
    first turns that failure into a Python error, raised again after it is seen once."""
    import mxnet as mx
    try:
        mx.nd.waitall()
    except mx.base.MXNetError as err:
        from ..errors import mxnet_error_line
        try:
            mx.nd.waitall()       # the engine has handed its failure over: the fork is safe
        except mx.base.MXNetError:
            raise err
        import warnings
        warnings.warn('an earlier MXNet operation failed before the data workers started: %s'
                      % mxnet_error_line(err))


class _Workers(object):
    """The worker processes of a loader: batch ``k`` of a pass goes to worker ``k % size``."""

    def __init__(self, dataset, batchify_fn, size, name, describe, timeout):
        from mxnet.util import is_np_array, is_np_shape
        ctx = multiprocessing.get_context('fork')
        self.size, self.name, self.describe, self.timeout = int(size), name, describe, timeout
        self.procs, self.tasks, self.results, self.pending = [], [], [], {}
        self.closed = self.busy = False
        ours = []
        _settle_engine()
        cv2 = sys.modules.get('cv2')
        # OpenCV's thread pool is not fork-safe: a child whose parent had pool threads hangs
        # in its first cv2.setNumThreads/parallel call (it joins threads it did not inherit).
        # The parent drops its pool for the fork and gets it back afterwards.
        cv2_threads = cv2.getNumThreads() if cv2 is not None else None
        if cv2 is not None:
            cv2.setNumThreads(0)
        # a signal arriving while a worker forks stays pending for this process (the worker
        # starts with it blocked and nothing pending, then ignores it)
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, (signal.SIGINT, signal.SIGTERM))
        try:
            for i in range(self.size):
                task_r, task_w = ctx.Pipe(duplex=False)
                result_r, result_w = ctx.Pipe(duplex=False)
                proc = ctx.Process(
                    target=_worker_main, name='gluon_tricks-data-%d' % i, daemon=True,
                    args=(dataset, batchify_fn, task_r, result_w, ours + [task_w, result_r],
                          os.getpid(), (is_np_shape(), is_np_array())))
                proc.start()
                task_r.close()
                result_w.close()
                ours += [task_w, result_r]
                self.procs.append(proc)
                self.tasks.append(task_w)
                self.results.append(result_r)
        except BaseException:
            self.stop(graceful=False)
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            if cv2 is not None:
                cv2.setNumThreads(cv2_threads)
        _LIVE.add(self)

    def send(self, index, keys):
        self.pending[index] = keys = list(keys)
        self.tasks[index % self.size].send((index, keys))

    def receive(self, index):
        """Batch ``index`` (its worker's next message), or the worker's exception."""
        if self.closed:
            raise RuntimeError('the data workers of %s were ended (close()) during this pass'
                               % (self.name or 'the data'))
        w = index % self.size
        conn, proc = self.results[w], self.procs[w]
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if conn.poll(max(0.0, min(1.0, left))):
                try:
                    message = conn.recv_bytes()
                    break
                except (EOFError, OSError):
                    self._died(w)
            if not proc.is_alive() and not conn.poll(0):   # no message sent before the end
                self._died(w)
            if left <= 0:
                self._timed_out(w, index)
        if message[:1] == b'E':
            data, tb = pickle.loads(message[1:])
            err = pickle.loads(data)
            raise err from _RemoteTraceback('in data worker %d (pid %d):\n%s'
                                            % (w, proc.pid, tb))
        from mxnet.gluon.data import dataloader  # noqa: F401 - registers the NDArray reducer
        try:    # the arrays' shared memory comes from the worker: it must still be alive
            batch = pickle.loads(message[1:])
        except (EOFError, OSError):
            proc.join(2.0)
            if proc.exitcode is None:
                raise
            self._died(w)
        del self.pending[index]
        return batch

    def _what(self, indices):
        """The batches ``indices`` of the pass: numbers and samples."""
        parts = []
        for index in indices[:3]:
            keys = self.pending[index]
            try:
                samples = self.describe(keys) if self.describe else None
            except Exception:  # noqa: B902 - a description must not hide the error
                samples = None
            keys = [k[0] if isinstance(k, tuple) else k for k in keys]
            parts.append('batch %d (%s)' % (index + 1, samples or 'samples %s%s' % (
                keys[:8], ' ...' if len(keys) > 8 else '')))
        return '%s%s of this pass over %s' % (' or '.join(parts), ' ...' if len(indices) > 3
                                              else '', self.name or 'the data')

    def _died(self, w):
        proc = self.procs[w]
        proc.join(1.0)
        code = proc.exitcode
        if code is not None and code < 0:
            try:
                how = 'was killed by %s' % signal.Signals(-code).name
            except ValueError:
                how = 'was killed by signal %d' % -code
            how += (' (out of memory? the kernel log, dmesg, says)' if -code == signal.SIGKILL
                    else ' (a crash in native code)' if -code in (signal.SIGSEGV, signal.SIGBUS,
                                                                   signal.SIGABRT) else '')
        else:
            how = 'exited (code %s)' % code
        self.stop(graceful=False)
        raise DataWorkerError(
            'data worker process %d of %d (pid %d) %s without reporting an error, while '
            'decoding %s. Run with -j 0 to decode in the training process (an error then names '
            'the file), or give the workers more memory (fewer with -j).'
            % (w + 1, self.size, proc.pid, how,
               self._what(sorted(k for k in self.pending if k % self.size == w))))

    def _timed_out(self, w, index):
        self.stop(graceful=False)
        raise DataWorkerError(
            'data worker process %d of %d (pid %d) delivered no batch in %g s, decoding %s: '
            'it is stuck (a file that cannot be read to its end: a FIFO, a hung network mount?). '
            'Check those files, or set GLUON_TRICKS_DATA_TIMEOUT to a larger number of seconds '
            'if the data is that slow.' % (w + 1, self.size, self.procs[w].pid, self.timeout,
                                           self._what([index])))

    def stop(self, graceful=True):
        """End the workers: a ``None`` task and a moment to exit when ``graceful``, then
        SIGKILL for any still alive; never waits long."""
        if self.closed:
            return
        self.closed = True
        _LIVE.discard(self)
        for conn in self.tasks:
            try:
                if graceful:
                    conn.send(None)
            except OSError:
                pass
            conn.close()
        deadline = time.monotonic() + (2.0 if graceful else 0.0)
        for proc in self.procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.exitcode is None:
                proc.kill()
                proc.join(5.0)
        for conn in self.results:
            conn.close()


@atexit.register
def _stop_all_workers():
    """At exit, before multiprocessing's own hook (which would join them): end every pass
    still running."""
    for workers in list(_LIVE):
        workers.stop(graceful=False)
