"""Label files (gluon_tricks.data.lists): every format of validation labels read_label_file
accepts, and the errors for the ones it refuses."""
import pytest

from gluon_tricks import data as gd


def test_read_label_file_formats(tmp_path):
    classes = ['n01', 'n02', 'n03']
    files = ['v1.JPEG', 'v2.JPEG', 'v3.JPEG']

    def read(text):
        p = tmp_path / 'labels.txt'
        p.write_text(text)
        return gd.read_label_file(str(p), files, classes)

    assert read('v1.JPEG n02\nv2.JPEG n01\nv3.JPEG n03\n') == [1, 0, 2]
    assert read('v3 2\nv1 0\nv2 1\n') == [0, 1, 2]                         # no ext, ints
    assert read('ImageId,PredictionString\nv1,n03 1 2 3 4\nv2,n01 5\nv3,n02 0\n') == [2, 0, 1]
    assert read('n02\nn02\nn01\n') == [1, 1, 0]                           # sorted file order
    with pytest.raises(gd.LabelError, match='devkit'):
        read('1\n2\n3\n')
    with pytest.raises(gd.LabelError, match="unknown class 'n09'"):
        read('v1 n09\nv2 n01\nv3 n01\n')
    with pytest.raises(gd.LabelError, match='out of range'):
        read('v1 3\nv2 0\nv3 0\n')
    with pytest.raises(gd.LabelError, match='no label.*v3.JPEG'):
        read('v1 n01\nv2 n01\n')
