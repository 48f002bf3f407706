"""The one training loop (:func:`fit`) and the task interface it drives (:class:`Task`)."""
from .loop import Meter, fit, make_scheduler, seed_step
from .task import Run, Task

__all__ = ['fit', 'Task', 'Run', 'Meter', 'seed_step', 'make_scheduler']
