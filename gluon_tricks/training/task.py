"""What a task supplies to :func:`gluon_tricks.training.fit`, and the run it gets back.

A task (classification, Faster-RCNN, FCN) supplies only its data, model, step and
evaluation; everything else (devices, lr, trainer, seeding, meters, checkpoints, resume,
signals, logs, ``metrics.jsonl``, ``results.json``) is the loop's. The loop calls, in order::

    task.setup(run)                          # before any network (e.g. AMP)
    train, val = task.build_data(run)        # train: len(), set_epoch(epoch, start_batch), iter
    net = task.build_model(run)              # after the init random stream is seeded
    params = task.trainable_params(run)      # what the trainer updates
    task.prepare(run)                        # run.trainer exists: loss scaler, teacher ...
    per epoch: task.start_epoch(run, epoch); per batch: task.train_step(run, batch, epoch, i, rng)
    when due:  task.evaluate(run, epoch)     # a dict of metrics (best_key among them)
    at the end: task.results(run, last_eval) # the fields of results.json
"""
import collections

__all__ = ['Task', 'Run']


class Run(object):
    """What the loop knows about the running training, handed to every task call.

    Attributes
    ----------
    cfg : gluon_tricks.config.TrainConfig
    dist : gluon_tricks.distributed.DistContext
    devices : list of mxnet.Context
    local_batch, global_batch : int
        Samples per step of this process, and of all ranks (the linear scaling rule's b).
    log : callable
        ``dist.log``.
    net, trainer, scheduler : set by the loop as they are built
    iters_per_epoch : int
    derived : dict
        Values resolved by the loop and the task (``lr``, ``classes`` ...): ``config.json``'s
        ``derived`` section.
    """

    def __init__(self, cfg, dist, devices, local_batch, global_batch):
        self.cfg = cfg
        self.dist = dist
        self.devices = devices
        self.local_batch, self.global_batch = local_batch, global_batch
        self.log = dist.log
        self.net = self.trainer = self.scheduler = None
        self.iters_per_epoch = None
        self.derived = collections.OrderedDict()


class Task(object):
    """The interface of a training task (see the module docstring for the call order).

    Class attributes
    ----------------
    name : str
        ``config.json``'s ``task``.
    best_key : str
        The evaluation metric whose maximum marks ``checkpoint-best``.
    meters : tuple of str
        Names of the device-side sums :meth:`train_step` returns, in order.
    """

    name = None
    best_key = None
    meters = ()

    def setup(self, run):
        """Before the data and the network are built."""

    def build_data(self, run):
        """``(train_loader, val_loader)``; the train loader has ``len()`` (batches per epoch),
        ``set_epoch(epoch, start_batch)`` and yields batches."""
        raise NotImplementedError

    def build_model(self, run):
        """The network, initialized on ``run.devices`` (the loop seeded the init stream)."""
        raise NotImplementedError

    def trainable_params(self, run):
        """The parameters the trainer updates (default: all of ``run.net``)."""
        return run.net.collect_params()

    multi_precision = False

    def prepare(self, run):
        """After the trainer: build what the step needs (loss functions, scaler ...)."""

    def stateful(self):
        """``{name: object with state_dict/load_state_dict}`` saved in every checkpoint."""
        return {}

    def start_epoch(self, run, epoch):
        """Before the first batch of ``epoch`` (e.g. switch the cached graph to training)."""

    def train_step(self, run, batch, epoch, i, rng):
        """Forward, backward and update of one batch.

        Returns ``(sums, samples)``: one device-side NDArray per name of :attr:`meters`
        (sums over the batch, read by the loop at log points only) and the number of samples
        of this process.
        """
        raise NotImplementedError

    def summarize(self, sums, samples):
        """``{name: value}`` of the log line and the epoch record from the summed meters."""
        raise NotImplementedError

    def log_extra(self):
        """Text appended to every training log line (e.g. the loss scale)."""
        return ''

    def epoch_fields(self):
        """Extra fields of the epoch record (e.g. skipped steps)."""
        return {}

    def evaluate(self, run, epoch):
        """Evaluate ``run.net``; returns the metrics of the epoch record (and logs them)."""
        raise NotImplementedError

    def results(self, run, last_eval, best):
        """The fields of ``results.json`` (``None``: none written); the final evaluation if
        the task wants one."""
        return None

    def checkpoint_info(self):
        """JSON fields describing the model, stored in every checkpoint's state."""
        return {}
