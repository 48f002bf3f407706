"""The one training loop (:func:`fit`) and the task interface it drives (:class:`Task`)."""
from .loop import (Meter, STREAM_INIT, STREAM_MXNET, STREAM_NUMPY, STREAM_PYTHON, fit,
                   make_scheduler, seed_step)
from .task import Run, SamplerLoader, Task

__all__ = ['fit', 'Task', 'Run', 'SamplerLoader', 'Meter', 'seed_step', 'make_scheduler', 'STREAM_INIT',
           'STREAM_MXNET', 'STREAM_NUMPY', 'STREAM_PYTHON']
