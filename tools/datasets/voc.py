"""Pascal VOC 2007 + 2012 for Faster-RCNN (Table 8): verify and extract the official archives.

:func:`prepare_voc` writes GluonCV's layout (``OUT/VOC2007``, ``OUT/VOC2012``), which
:func:`gluon_tricks.detection.voc_dataset` reads; ``scripts/detection/prepare_voc.py`` is its
command line.
"""
import os
import shutil

from gluon_tricks.detection import check_voc_layout

from .archives import ArchiveError, check_archive, extract_archive, move_into_place

__all__ = ['VOC_ARCHIVES', 'VOC_SPLIT_SIZES', 'prepare_voc']

#: The official VOC archives: MD5, origin, and a member that identifies each.
VOC_ARCHIVES = (
    ('VOCtrainval_06-Nov-2007.tar', 'c52e279531787c972589f7e41ab4ae64',
     'http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtrainval_06-Nov-2007.tar',
     'VOCdevkit/VOC2007/ImageSets/Main/trainval.txt'),
    ('VOCtest_06-Nov-2007.tar', 'b6e924de25625d8de591ea690078ad9f',
     'http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtest_06-Nov-2007.tar',
     'VOCdevkit/VOC2007/ImageSets/Main/test.txt'),
    ('VOCtrainval_11-May-2012.tar', '6cd6e144f989b92b3379bac3b3de84fd',
     'http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar',
     'VOCdevkit/VOC2012/ImageSets/Main/trainval.txt'),
)
#: Images of the splits the paper uses, in the official release.
VOC_SPLIT_SIZES = {(2007, 'trainval'): 5011, (2007, 'test'): 4952, (2012, 'trainval'): 11540}


def prepare_voc(archives_dir, out_dir, skip_checksum=False, md5s=None, overwrite=False,
                log=print):
    """Verify and extract the three VOC archives into GluonCV's layout.

    ``OUT_DIR/VOC2007`` (trainval + test) and ``OUT_DIR/VOC2012`` (trainval) are created,
    which is what ``VOCDetection(root=OUT_DIR)`` and ``train_faster_rcnn.py --data-dir
    OUT_DIR`` read. Extraction goes to a temporary folder inside ``OUT_DIR`` first; nothing is
    moved into place unless every archive was read completely.

    Parameters
    ----------
    archives_dir : str
        Folder holding VOCtrainval_06-Nov-2007.tar, VOCtest_06-Nov-2007.tar and
        VOCtrainval_11-May-2012.tar.
    out_dir : str
    skip_checksum : bool
        Do not compare MD5s (for repacked archives); truncated or corrupt archives still fail
        while extracting.
    md5s : dict, optional
        ``{archive name: md5}`` replacing the official MD5s (e.g. of a mirror).
    overwrite : bool
        Replace existing ``VOC2007``/``VOC2012`` folders.
    log : callable
        Progress messages.

    Returns
    -------
    dict
        Images per split, ``{(year, name): count}``.

    Raises
    ------
    tools.datasets.archives.ArchiveError
        Missing, truncated, corrupt or wrong archive (all missing ones are named at once).
    FileExistsError
        Output folders exist and ``overwrite`` is False.
    """
    archives_dir, out_dir = os.path.expanduser(archives_dir), os.path.expanduser(out_dir)
    md5s = dict(md5s or {})
    missing = [name for name, _, _, _ in VOC_ARCHIVES
               if not os.path.isfile(os.path.join(archives_dir, name))]
    if missing:
        raise ArchiveError('missing VOC archive(s) in %s: %s (download them from %s)'
                           % (archives_dir, ', '.join(missing),
                              ', '.join(url for name, _, url, _ in VOC_ARCHIVES
                                        if name in missing)))
    for year in (2007, 2012):
        dst = os.path.join(out_dir, 'VOC%d' % year)
        if os.path.lexists(dst) and not overwrite:
            raise FileExistsError('%s already exists; pass --overwrite to replace it' % dst)
    for name, md5, url, _ in VOC_ARCHIVES:
        path = os.path.join(archives_dir, name)
        if skip_checksum:
            check_archive(path, None, url)
        else:
            log('checking MD5 of %s' % path)
            check_archive(path, md5s.get(name, md5), url)
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, '.tmp-prepare-voc-%d' % os.getpid())
    try:
        for name, _, _, member in VOC_ARCHIVES:
            log('extracting %s' % name)
            extract_archive(os.path.join(archives_dir, name), tmp, required=[member])
        counts = check_voc_layout(os.path.join(tmp, 'VOCdevkit'), tuple(VOC_SPLIT_SIZES))
        for year in (2007, 2012):
            move_into_place(os.path.join(tmp, 'VOCdevkit', 'VOC%d' % year),
                            os.path.join(out_dir, 'VOC%d' % year), overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for split, count in sorted(counts.items()):
        official = VOC_SPLIT_SIZES[split]
        log('VOC%d %s: %d images%s' % (split[0], split[1], count, '' if count == official else
                                       ' (the official release has %d)' % official))
    return counts
