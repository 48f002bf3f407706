"""Run logs shared by every training script: the log file and the per-epoch metrics file."""
import json
import logging
import os
import sys

import numpy as np

__all__ = ['make_logger', 'append_jsonl', 'start_run', 'resume_run']


def make_logger(name, save_dir, is_master, logging_file=None):
    """A logger writing to stdout and ``SAVE_DIR/train.log`` on the master rank only.

    Parameters
    ----------
    name : str
        Logger name.
    save_dir : str
        Created on the master rank.
    is_master : bool
        Other ranks get a logger that discards everything.
    logging_file : str, optional
        Log file (default ``SAVE_DIR/train.log``).

    Returns
    -------
    logging.Logger
    """
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = False
    if is_master:
        os.makedirs(save_dir, exist_ok=True)
        fmt = logging.Formatter('%(asctime)s %(message)s', '%Y-%m-%d %H:%M:%S')
        for handler in (logging.StreamHandler(sys.stdout),
                        logging.FileHandler(logging_file or os.path.join(save_dir, 'train.log'))):
            handler.setFormatter(fmt)
            logger.addHandler(handler)
    else:
        logger.addHandler(logging.NullHandler())
    return logger


def append_jsonl(path, record):
    """Append one JSON line to ``path`` (e.g. ``SAVE_DIR/metrics.jsonl``).

    Parameters
    ----------
    path : str
    record : dict
        JSON-serialisable (numpy scalars are converted).
    """
    with open(path, 'a') as f:
        f.write(json.dumps(record, sort_keys=True, default=_json_default) + '\n')


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError('%r is not JSON serialisable' % (value,))


def start_run(args):
    """The common start of every training script (one device, several, or Horovod).

    Creates the :class:`~gluon_tricks.distributed.DistContext` (``args.horovod``), the logger
    (master rank only, ``args.save_dir``/``args.logging_file``) and the devices
    (``args.num_gpus``), and derives the batch sizes from ``args.batch_size`` (per device).

    Returns
    -------
    (DistContext, list of mxnet.Context, int, int)
        The context, the devices, this process's batch (per device x devices) and the global
        batch (x ranks), which sets the learning rate by linear scaling.
    """
    from .distributed import DistContext
    dist = DistContext(horovod=args.horovod)
    dist.logger = make_logger('gluon_tricks', args.save_dir, dist.is_master,
                              args.logging_file)
    from .threads import configure_threads
    dist.log(configure_threads())    # what the script's first lines chose, before MXNet
    devices = dist.devices(args.num_gpus)
    return (dist, devices, args.batch_size * len(devices),
            dist.global_batch_size(args.batch_size, len(devices)))


def resume_run(save_dir, net, trainer, devices, dist):
    """``--resume``: restore the latest checkpoint of ``save_dir`` into ``net`` and ``trainer``
    (parameters, momentum, master weights, optimizer and schedule position), broadcast the
    parameters from rank 0, and return the state saved with it (epoch, best metric ...).
    """
    from .checkpoint import CheckpointManager
    latest = CheckpointManager(save_dir).load_latest()
    if latest is None:
        raise FileNotFoundError('--resume: no checkpoint in %s (train without --resume first)'
                                % save_dir)
    state = latest.restore(net, trainer, devices)
    dist.broadcast_parameters(net.collect_params())
    dist.log('resumed from %s at epoch %d' % (latest.directory, state['epoch']))
    return state
