"""Speed measurements of ``scripts/classification/benchmark.py`` (docs/performance.md).

timing     interleaved windows, paired ratios, latency (how everything is measured)
loops      our training step, GluonCV's per-batch loop, inference on a fixed batch
pipeline   generated JPEG records; our RecordLoader against a bare ImageRecordIter
precision  loops in worker processes (``python -m tools.benchmark.precision``) and the
           float32 / bfloat16 / INT8 exports; digits: a quickly trained net for their top-1
profiling  per-operator MXNet profile of a step
machine    CPU, cores, clock, FP32 peak, OpenMP threads
suite      the measurements the script runs and its text report

Nothing here is imported at package import (a worker must set its threads before MXNet).
"""
