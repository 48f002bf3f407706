"""The configuration shared by the tasks trained from a classification backbone (section 6:
detection, segmentation): the backbone's flags and the frame of a data set's flags."""
import dataclasses
from typing import Optional

from ..sections import Section, flag, mode_flag

__all__ = ['BackboneConfig', 'DatasetConfig', 'workers_flag']


@dataclasses.dataclass
class BackboneConfig(Section):
    """Base of a model section: ``--backbone``, ``--backbone-params``, ``--mode``."""

    title = 'model'

    backbone: str = flag('resnet50_v1d', required=True,
                         help='zoo ResNet name, e.g. resnet50_v1b (B-standard) or resnet50_v1d')
    backbone_params: Optional[str] = flag(
        None, required=True,
        help='classification checkpoint: .params of train_imagenet.py (or its checkpoint dir / '
             '--save-dir) or GluonCV\'s for the same name')
    mode: str = mode_flag()

    def check(self):
        from ..model_zoo import get_model_list
        name = self.backbone
        if name.lower() not in get_model_list() or not name.startswith('resnet'):
            raise ValueError('unknown --backbone %r; valid: %s' % (
                name, ', '.join(m for m in get_model_list() if m.startswith('resnet'))))


class DatasetConfig(Section):
    """Base of a data section: its dataclass declares ``data_dir`` (``--data-dir``) first,
    then the data set's own flags, then ``num_workers = workers_flag()`` (``-j``)."""

    title = 'data'


def workers_flag():
    """The ``num_workers`` field of a data section: ``-j`` and GluonCV's other spellings."""
    return flag(None, '-j', '--num-data-workers', '--num-workers', '--workers', type=int,
                help='data loader worker processes; default: the CPUs of this rank, one left '
                     'for the training process where it has more than 2')
