"""The configuration shared by the tasks trained from a classification backbone (section 6:
detection, segmentation): the backbone's flags and the frame of a data set's flags."""
import dataclasses
from typing import Optional

from ..config import Section, add_mode

__all__ = ['BackboneConfig', 'DatasetConfig']


@dataclasses.dataclass
class BackboneConfig(Section):
    """Base of a model section: ``--backbone``, ``--backbone-params``, ``--mode``."""

    backbone: str = 'resnet50_v1d'
    backbone_params: Optional[str] = None
    mode: str = 'hybrid'

    @staticmethod
    def add_args(parser, defaults=None):
        g = parser.add_argument_group('model')
        g.add_argument('--backbone', required=True,
                       help='zoo ResNet name, e.g. resnet50_v1b (B-standard) or resnet50_v1d')
        g.add_argument('--backbone-params', required=True,
                       help='classification checkpoint: .params of train_imagenet.py (or its '
                            'checkpoint dir / --save-dir) or GluonCV\'s for the same name')
        add_mode(g)
        return g

    def check(self):
        from ..model_zoo import get_model_list
        name = self.backbone
        if name.lower() not in get_model_list() or not name.startswith('resnet'):
            raise ValueError('unknown --backbone %r; valid: %s' % (
                name, ', '.join(m for m in get_model_list() if m.startswith('resnet'))))


class DatasetConfig(Section):
    """Base of a data section (a dataclass with ``data_dir`` and ``num_workers`` fields):
    ``--data-dir`` (help: ``data_dir_help``), the data set's own flags
    (:meth:`add_dataset_args`), then ``-j``."""

    data_dir_help = ''

    @classmethod
    def add_args(cls, parser, defaults=None):
        d = cls()
        g = parser.add_argument_group('data')
        g.add_argument('--data-dir', default=d.data_dir, help=cls.data_dir_help)
        cls.add_dataset_args(g, d)
        g.add_argument('-j', '--num-data-workers', '--num-workers', '--workers',
                       dest='num_workers', type=int, default=d.num_workers,
                       help='data loader worker processes; default: the CPUs of this rank, one '
                            'left for the training process where it has more than 2')
        return g

    @staticmethod
    def add_dataset_args(group, d):
        """Add the data set's flags to ``group`` (their defaults: the fields of ``d``)."""
