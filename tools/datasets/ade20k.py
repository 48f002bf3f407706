"""ADE20K (SceneParsing) for FCN (Table 9): verify and extract ADEChallengeData2016.zip.

:func:`prepare_ade20k` writes GluonCV's layout (``OUT/ADEChallengeData2016``), which
:func:`gluon_tricks.segmentation.ade20k_dataset` reads; ``scripts/segmentation/prepare_ade20k.py``
is its command line.
"""
import os
import shutil

from gluon_tricks.segmentation import _check_ade20k_split

from .archives import check_archive, extract_archive, move_into_place

__all__ = ['ADE20K_ARCHIVE', 'ADE20K_SPLIT_SIZES', 'check_ade20k_layout', 'prepare_ade20k']

#: The official SceneParsing archive: name, MD5, origin.
ADE20K_ARCHIVE = ('ADEChallengeData2016.zip', '7328b3957e407ddae1d3cbf487f149ef',
                  'http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip')
#: Images per split in the official release.
ADE20K_SPLIT_SIZES = {'training': 20210, 'validation': 2000}
_ADE_REQUIRED = ['ADEChallengeData2016/images/training', 'ADEChallengeData2016/images/validation',
                 'ADEChallengeData2016/annotations/training',
                 'ADEChallengeData2016/annotations/validation']


def check_ade20k_layout(root):
    """Check that ``root`` holds what GluonCV's ``ADE20KSegmentation(root)`` reads.

    Parameters
    ----------
    root : str
        Folder holding ``ADEChallengeData2016``.

    Returns
    -------
    dict
        ``{'training': n, 'validation': n}`` image/mask pairs.

    Raises
    ------
    FileNotFoundError
        A folder is missing, or images without masks (the first few named).
    """
    return {split: _check_ade20k_split(root, split) for split in ('training', 'validation')}


def prepare_ade20k(archive, out_dir, skip_checksum=False, md5=None, overwrite=False,
                   log=print):
    """Verify and extract ADEChallengeData2016.zip into GluonCV's layout.

    Creates ``OUT_DIR/ADEChallengeData2016/{images,annotations}/{training,validation}``, read
    by ``ADE20KSegmentation(root=OUT_DIR)`` and ``train_fcn.py --data-dir OUT_DIR``. The
    archive is extracted into a temporary folder inside ``OUT_DIR`` and moved into place only
    when complete.

    Parameters
    ----------
    archive : str
        Path of ADEChallengeData2016.zip.
    out_dir : str
    skip_checksum : bool
        Do not compare the MD5 (repacked archive); corrupt data still fails on extraction.
    md5 : str, optional
        Expected MD5 instead of the official one.
    overwrite : bool
        Replace an existing ``ADEChallengeData2016`` folder.
    log : callable

    Returns
    -------
    dict
        Image/mask pairs per split.

    Raises
    ------
    tools.datasets.archives.ArchiveError
        Missing, truncated, corrupt or wrong archive.
    FileExistsError
        The output exists and ``overwrite`` is False.
    """
    archive, out_dir = os.path.expanduser(archive), os.path.expanduser(out_dir)
    name, official_md5, url = ADE20K_ARCHIVE
    dst = os.path.join(out_dir, 'ADEChallengeData2016')
    check_archive(archive, None, url)
    if os.path.lexists(dst) and not overwrite:
        raise FileExistsError('%s already exists; pass --overwrite to replace it' % dst)
    if not skip_checksum:
        log('checking MD5 of %s' % archive)
        check_archive(archive, md5 or official_md5, url)
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, '.tmp-prepare-ade20k-%d' % os.getpid())
    try:
        log('extracting %s' % archive)
        extract_archive(archive, tmp, required=_ADE_REQUIRED)
        counts = check_ade20k_layout(tmp)
        move_into_place(os.path.join(tmp, 'ADEChallengeData2016'), dst, overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for split, count in sorted(counts.items()):
        official = ADE20K_SPLIT_SIZES[split]
        log('ADE20K %s: %d images with masks%s' % (
            split, count, '' if count == official else
            ' (the official release has %d)' % official))
    return counts
