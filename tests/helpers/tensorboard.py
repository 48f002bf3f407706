"""TensorBoard event files read back without TensorBoard: what the tests compare the scalars
of :class:`gluon_tricks.curves.TensorBoardWriter` (``--tensorboard``) with."""
import glob
import os
import struct


def read_tensorboard_scalars(logdir):
    """The scalars of the event files in ``logdir``: ``{tag: [(step, value), ...]}``.

    Reads the TFRecord framing (length, its CRC, the ``Event`` protobuf, its CRC) and parses
    the events with tensorboardX's protobuf classes; TensorBoard itself is not needed.
    """
    from tensorboardX.proto import event_pb2
    scalars = {}
    files = sorted(glob.glob(os.path.join(logdir, 'events.out.tfevents.*')))
    if not files:
        raise FileNotFoundError('no events.out.tfevents.* file in %s' % logdir)
    for path in files:
        with open(path, 'rb') as f:
            blob = f.read()
        pos = 0
        while pos + 12 <= len(blob):
            (length,) = struct.unpack('<Q', blob[pos:pos + 8])
            start = pos + 12
            if start + length + 4 > len(blob):
                break  # a record still being written
            event = event_pb2.Event()
            event.ParseFromString(blob[start:start + length])
            pos = start + length + 4
            for value in event.summary.value:
                if value.HasField('simple_value'):
                    scalars.setdefault(value.tag, []).append((int(event.step),
                                                              float(value.simple_value)))
    return scalars
