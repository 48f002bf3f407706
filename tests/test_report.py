"""The report (scripts/report.py, tools/report) on fabricated run directories
(``config.json``, ``metrics.jsonl``): Markdown with the paper's column, the seeds' spread and
PNGs; a run whose metrics file is damaged marks its row and the report goes on."""
import json
import os
import subprocess
import sys

import pytest

from helpers.files import is_png

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORT = os.path.join(REPO, 'scripts', 'report.py')


def _fabricate(runs, name, model, epochs, top1s, top5=0.9, sps=200.0, images=1000, gbatch=1024,
               input_size=224, dtype='float16', seed=0):
    d = runs / name
    d.mkdir(parents=True)
    with open(str(d / 'metrics.jsonl'), 'w') as f:
        for e, t in enumerate(top1s, 1):
            f.write(json.dumps({'epoch': e, 'top1': t, 'top5': top5, 'samples_per_sec': sps,
                                'epoch_time': images / sps, 'train_loss': 1.0, 'lr': 0.1}) + '\n')
    config = {'task': 'classification', 'script': 'scripts/classification/train_imagenet.py',
              'data': {'input_size': input_size, 'use_rec': True},
              'model': {'model': model, 'dtype': dtype, 'last_gamma': False},
              'optim': {'num_epochs': epochs, 'batch_size': gbatch // 8},
              'run': {'seed': seed}, 'derived': {'global_batch': gbatch, 'lr': 0.1}}
    (d / 'config.json').write_text(json.dumps(config))
    return d


@pytest.mark.subprocess
def test_report_on_fabricated_runs(tmp_path):
    runs = tmp_path / 'runs'
    _fabricate(runs, 'r50-baseline', 'resnet50_v1', 120, [0.5, 0.6, 0.7580], top5=0.93,
               sps=100.0, images=6000, gbatch=256, dtype='float32')
    _fabricate(runs, 'r50-efficient', 'resnet50_v1', 120, [0.5, 0.6, 0.77], sps=300.0,
               images=6000)
    _fabricate(runs, 'r50d-efficient', 'resnet50_v1d', 3, [0.4, 0.5, 0.6])
    _fabricate(runs, 'r50d-cosine', 'resnet50_v1d', 120, [0.45, 0.55])  # unfinished
    # a row with seeds: mean and spread; the next row within it
    _fabricate(runs, 'r50d-smooth', 'resnet50_v1d', 2, [0.5, 0.60])
    _fabricate(runs, 'r50d-smooth-seed1', 'resnet50_v1d', 2, [0.5, 0.62], seed=1)
    _fabricate(runs, 'r50d-smooth-seed2', 'resnet50_v1d', 2, [0.5, 0.64], seed=2)
    _fabricate(runs, 'r50d-distill', 'resnet50_v1d', 2, [0.5, 0.63])
    _fabricate(runs, 'r50d-distill-seed1', 'resnet50_v1d', 2, [0.5, 0.61], seed=1)
    det = runs / 'det-r50d-efficient'
    det.mkdir()
    (det / 'metrics.jsonl').write_text(json.dumps({'epoch': 20, 'map': 0.7930}) + '\n')
    (det / 'config.json').write_text(json.dumps({'task': 'detection', 'model': {
        'backbone': 'resnet50_v1d'}, 'optim': {'num_epochs': 20}}))
    (det / 'results.json').write_text(json.dumps({'map': 0.7930}))
    seg = runs / 'seg-r50d-efficient'
    seg.mkdir()
    (seg / 'metrics.jsonl').write_text(json.dumps({'epoch': 120, 'pixAcc': 0.79,
                                                   'mIoU': 0.3888}) + '\n')
    (seg / 'config.json').write_text(json.dumps({'task': 'segmentation', 'model': {
        'backbone': 'resnet50_v1d'}, 'optim': {'num_epochs': 120}}))
    out = tmp_path / 'report'
    proc = subprocess.run([sys.executable, REPORT, '--runs', str(runs), '--out', str(out),
                           '--no-figure4b'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    t2 = (out / 'table2.md').read_text()
    row = next(l for l in t2.splitlines() if l.startswith('| ResNet-50 |'))
    cells = [c.strip() for c in row.strip('|').split('|')]
    assert cells[1] == '`r50-baseline` (resnet50_v1, 224 px, batch 256, float32, 120 ep)'
    assert cells[2] == '3/120 epochs'
    assert cells[3:9] == ['75.80', '75.87', '-0.07', '93.00', '92.70', '+0.30']
    assert '| Inception-V3 | `inception-baseline` | not run | not run | 77.32 |' in t2
    # Table 3: time per epoch = images / throughput: 6000 / 100 / 60 = 1.00 min, 0.33 min
    t3 = (out / 'table3.md').read_text()
    assert '| ResNet-50: Baseline | `r50-baseline`' in t3 and '| 1.00 | 13.30 |' in t3
    assert '| 0.33 | 4.40 |' in t3 and 'ours 3.00x, paper 3.02x' in t3
    # Table 5's size columns come from the model summary of the paper's networks
    t5 = (out / 'table5.md').read_text()
    r5 = next(l for l in t5.splitlines() if l.startswith('| ResNet-50-D |'))
    c5 = [c.strip() for c in r5.strip('|').split('|')]
    assert c5[3:5] == ['25.6', '25.0'] and c5[6:8] == ['4.33', '4.30']
    assert c5[9:11] == ['60.00', '77.16']
    # Table 6: progress of an unfinished run; mean ± spread over seeds, and what it means
    t6 = (out / 'table6.md').read_text()
    assert '| ResNet-50-D: + cosine decay | `r50d-cosine` (resnet50_v1d, 224 px, batch 1024, ' \
           'float16, 120 ep) | 2/120 epochs | 55.00 | 77.91 | -22.91 |' in t6
    assert '`r50d-smooth` (resnet50_v1d, 224 px, batch 1024, float16, 2 ep, 3 seeds) | ' \
           'finished | 62.00 ± 2.00 | 78.31 | -16.31 |' in t6
    assert '62.00 ± 1.41 | 78.67 |' in t6
    assert '- ResNet-50-D: "+ distill w/o mixup" vs "+ label smoothing": +0.00 top-1, less ' \
           'than the run-to-run spread, not a difference (2.00)' in t6
    # Tables 8 and 9 read the downstream runs and the backbone's top-1
    t8 = (out / 'table8.md').read_text()
    assert '| D-efficient | `det-r50d-efficient` (resnet50_v1d, 20 ep) | finished | 60.00 | ' \
           '77.16 | -17.16 | 79.30 | 78.30 | +1.00 |' in t8
    assert '| B-standard | `det-r50b-baseline` | not run |' in t8
    t9 = (out / 'table9.md').read_text()
    assert '| 79.00 | 78.88 | +0.12 | 38.88 | 38.88 | +0.00 |' in t9
    # figures: 3a always, 3b from the metrics, 4a always; 4b skipped on request
    for png in ('figure3a.png', 'figure3b.png', 'figure4a.png'):
        assert is_png(str(out / png)), png
    assert not (out / 'figure4b.png').exists()
    assert '9.10 at eps = 0.1' in (out / 'figure4.md').read_text()
    readme = (out / 'README.md').read_text()
    assert '## Table 2' in readme and '## Table 9' in readme and '## Figure 4' in readme
    assert 'Proxy scale' not in readme
    # --only rewrites one file and keeps the others in the index
    (out / 'table4.md').unlink()
    subprocess.run([sys.executable, REPORT, '--runs', str(runs), '--out', str(out), '--only',
                    'table4'], check=True, stdout=subprocess.PIPE, timeout=300)
    assert (out / 'table4.md').exists() and '## Table 7' in (out / 'README.md').read_text()


def test_a_torn_metrics_line_marks_its_row_and_the_report_goes_on(tmp_path):
    """One run whose metrics.jsonl was cut by a crash: that row says so, the others read."""
    from tools.report.runs import RunInfo
    good, torn = tmp_path / 'good', tmp_path / 'torn'
    for d in (good, torn):
        d.mkdir()
    (good / 'metrics.jsonl').write_text('{"epoch": 1, "top1": 0.5}\n')
    (torn / 'metrics.jsonl').write_text('{"epoch": 1, "top1": 0.5}\n{"epoch": 2, "to')
    assert RunInfo('good', str(good)).status == 'finished'    # no config: no total to reach
    bad = RunInfo('torn', str(torn))
    assert bad.status.startswith('metrics.jsonl damaged') and 'line 2' in bad.problem
