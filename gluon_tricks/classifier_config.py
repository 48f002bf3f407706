"""The flag sections of classification: the model (:class:`ClassifierConfig`, including
fine-tuning) and the refinements of section 5 (:class:`TricksConfig`)."""
import dataclasses
import os
from typing import Optional

from .sections import Section, flag, mode_flag

__all__ = ['ClassifierConfig', 'TricksConfig']


# ------------------------------------------------------------------------------ model
@dataclasses.dataclass
class ClassifierConfig(Section):
    """The classification network and its precision (sections 2-4)."""

    title = 'model'

    model: str = flag('resnet50_v1d',
                      help='get_model name: resnet{18,34,50,101,152}_v1{,b,c,d}, resnet*_v1e/s, '
                           'mobilenet1.0 ... mobilenet0.25, inceptionv3')
    mode: str = mode_flag()
    last_gamma: bool = flag(False, action='store_true',
                            help='zero gamma (section 3.1): last BN of every residual block '
                                 'starts at 0')
    init: str = flag('paper', choices=['paper', 'msra'],
                     help="paper: Xavier uniform (section 2.1); msra: GluonCV script's "
                          "MSRAPrelu")
    dtype: str = flag('float32', choices=['float32', 'float16', 'bfloat16'],
                      help='float16: FP16 network, FP32 BN and master weights (section 3.2); '
                           'bfloat16: through mxnet.contrib.amp (CPU)')
    loss_scale: Optional[str] = flag(None, help="loss scaling: a number (static), 'dynamic', "
                                                "or 'none'; default 'dynamic' for float16, "
                                                "'none' otherwise")
    initial_checkpoint: Optional[str] = flag(
        None, metavar='PATH',
        help="fine-tune: start from these weights (a .params file of ours or GluonCV's, a "
             'checkpoint or run directory); a classifier of another size is re-initialised. '
             'Not a resume: optimizer and schedule start afresh')
    freeze_backbone: bool = flag(False, action='store_true',
                                 help='with --initial-checkpoint: train the classifier only')
    backbone_lr_mult: float = flag(1.0, type=float,
                                   help='learning-rate multiplier of everything but the '
                                        'classifier (e.g. 0.1 for transfer learning)')

    def check(self):
        from .model_zoo import get_model_list
        if self.model.lower() not in get_model_list():
            raise ValueError('unknown --model %r; valid names: %s'
                             % (self.model, ', '.join(get_model_list())))
        if self.last_gamma and not self.model.lower().startswith('resnet'):
            raise ValueError('--last-gamma zero-initializes the last BatchNorm of residual '
                             'blocks; --model %s has none (use a resnet* model or drop '
                             '--last-gamma)' % self.model)
        if self.initial_checkpoint and not os.path.exists(self.initial_checkpoint):
            raise ValueError('--initial-checkpoint %s does not exist' % self.initial_checkpoint)
        if (self.freeze_backbone or self.backbone_lr_mult != 1.0) and not \
                self.initial_checkpoint:
            raise ValueError('--freeze-backbone and --backbone-lr-mult fine-tune a trained '
                             'network: give --initial-checkpoint')
        if not self.backbone_lr_mult >= 0:
            raise ValueError('--backbone-lr-mult must be >= 0, got %g' % self.backbone_lr_mult)
        if self.loss_scale is None:
            self.loss_scale = 'dynamic' if self.dtype == 'float16' else 'none'
        if self.loss_scale not in ('dynamic', 'none'):
            try:
                self.loss_scale = float(self.loss_scale)
            except ValueError:
                raise ValueError("--loss-scale must be a number, 'dynamic' or 'none', got %r"
                                 % self.loss_scale) from None

    def check_with(self, cfg):
        if self.dtype == 'float16' and cfg.optim.num_gpus == 0:
            from .precision import bfloat16_supported
            ok, reason = bfloat16_supported()
            raise ValueError('--dtype float16 needs GPUs (--num-gpus N): MXNet has no float16 '
                             'matrix multiply on CPU. %s' % (
                                 'On this CPU use --dtype bfloat16 (or float32).' if ok else
                                 'Use --dtype float32 (this CPU cannot train in bfloat16 '
                                 'either: %s).' % reason))


# ------------------------------------------------------------------------------ tricks
@dataclasses.dataclass
class TricksConfig(Section):
    """The training refinements of section 5 (label smoothing, distillation, mixup)."""

    title = 'refinements (section 5)'

    label_smoothing: bool = flag(False, action='store_true', help='label smoothing (5.2)')
    smoothing_eps: float = flag(0.1, type=float, help='epsilon of eq. (4)')
    smoothing_style: str = flag('paper', choices=['paper', 'gluoncv'],
                                help="paper: eq. (4), eps/(K-1) off target; gluoncv: eps/K")
    mixup: bool = flag(False, action='store_true', help='mixup training (5.4)')
    mixup_alpha: float = flag(0.2, type=float, help='Beta(alpha, alpha)')
    mixup_off_epoch: int = flag(0, type=int, help='train the last N epochs without mixup')
    teacher: Optional[str] = flag(None, help='distillation teacher model name (5.3)')
    teacher_params: Optional[str] = flag(None, help='teacher .params file')
    teacher_input_size: Optional[int] = flag(None, type=int,
                                             help='resize the batch to this size for the '
                                                  'teacher (default: the input size)')
    temperature: float = flag(20.0, type=float, help='T of eq. (6)')
    hard_weight: Optional[float] = flag(None, type=float,
                                        help="GluonCV's blend w*hard + (1-w)*T^2*soft; "
                                             "default: eq. (6), 1 and 1")
    model_ema: bool = flag(False, action='store_true',
                           help="timm's model EMA: also keep, evaluate (top1_ema) and "
                                'checkpoint (net-ema.params) a moving average of the weights')
    model_ema_decay: float = flag(0.9998, type=float,
                                  help='EMA decay per step: ema = d * ema + (1 - d) * weights')

    def mixup_on(self, epoch, num_epochs):
        """Whether mixup applies in ``epoch`` (0-based) of a run of ``num_epochs``."""
        return self.mixup and epoch < num_epochs - self.mixup_off_epoch

    def check(self):
        from .model_zoo import get_model_list
        if not 0 <= self.model_ema_decay < 1:
            raise ValueError('--model-ema-decay must be in [0, 1), got %g' % self.model_ema_decay)
        if self.mixup and self.mixup_alpha <= 0:
            raise ValueError('--mixup-alpha must be positive (the Beta(alpha, alpha) of mixup; '
                             'paper: 0.2), got %g' % self.mixup_alpha)
        if self.label_smoothing and not 0 <= self.smoothing_eps < 1:
            raise ValueError('--smoothing-eps must be in [0, 1) (paper: 0.1), got %g'
                             % self.smoothing_eps)
        if self.teacher and self.teacher.lower() not in get_model_list():
            raise ValueError('unknown --teacher %r; valid names: %s'
                             % (self.teacher, ', '.join(get_model_list())))
        if self.teacher and not self.teacher_params:
            raise ValueError('--teacher needs --teacher-params FILE (the teacher\'s trained '
                             'weights)')
        if self.teacher_input_size is not None and not (self.teacher and
                                                        self.teacher_input_size > 0):
            raise ValueError('--teacher-input-size needs --teacher and a positive size')
        if self.teacher_params and not os.path.isfile(self.teacher_params):
            raise ValueError('--teacher-params %s does not exist' % self.teacher_params)
