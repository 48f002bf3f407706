"""Checksums and safe extraction of the official data-set archives (tar or zip).

Used by the preparation of VOC (:mod:`tools.datasets.voc`) and ADE20K
(:mod:`tools.datasets.ade20k`): :func:`check_archive` compares the MD5, :func:`extract_archive`
extracts without writing outside the destination, :class:`ArchiveError` names the file and what
is wrong with it.
"""
import os
import re
import shutil
import tarfile
import zipfile
import zlib

from gluon_tricks.errors import UserError
from gluon_tricks.fsutil import file_digest

__all__ = ['ArchiveError', 'file_md5', 'read_md5_file', 'check_archive', 'extract_archive',
           'move_into_place']


class ArchiveError(UserError, RuntimeError):
    """A data archive that is missing, truncated, corrupt or not the expected one."""


def file_md5(path, chunk_size=1 << 22):
    """MD5 hex digest of a file, read in chunks.

    Parameters
    ----------
    path : str
    chunk_size : int

    Returns
    -------
    str
    """
    return file_digest(path, 'md5', chunk_size)


def read_md5_file(path):
    """Read ``md5sum`` output (``<md5>  <file name>`` per line) into ``{file name: md5}``.

    Parameters
    ----------
    path : str

    Returns
    -------
    dict
    """
    sums = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            parts = line.split()
            if len(parts) != 2 or not re.match(r'^[0-9a-fA-F]{32}$', parts[0]):
                raise ValueError('%s line %d is not "<md5> <file name>": %r' % (path, number, line))
            sums[os.path.basename(parts[1].lstrip('*'))] = parts[0].lower()
    return sums


def check_archive(path, md5=None, url=None):
    """Check that an archive exists and, if ``md5`` is given, that its MD5 matches.

    Parameters
    ----------
    path : str
    md5 : str, optional
        Expected MD5 (None skips the check).
    url : str, optional
        Where the official file comes from (named in the error).

    Raises
    ------
    ArchiveError
        Missing, empty, or a different MD5 (the message gives both digests and the size and
        suggests a re-download, or ``--skip-checksum`` for a deliberately repacked file).
    """
    if not os.path.isfile(path):
        raise ArchiveError('archive %s is missing%s' % (path, ' (download it from %s)' % url
                                                        if url else ''))
    size = os.path.getsize(path)
    if size == 0:
        raise ArchiveError('archive %s is empty (0 bytes): an interrupted download?' % path)
    if md5 is None:
        return
    found = file_md5(path)
    if found != md5.lower():
        raise ArchiveError(
            'archive %s has MD5 %s, expected %s (%d bytes on disk): the file is truncated, '
            'corrupt or another file%s; pass --skip-checksum only if you repacked it '
            'deliberately' % (path, found, md5, size,
                              ' -- download it again from %s' % url if url else ''))


def _safe_target(dest, name):
    target = os.path.realpath(os.path.join(dest, name))
    root = os.path.realpath(dest)
    if os.path.isabs(name) or not (target == root or target.startswith(root + os.sep)):
        raise ArchiveError('archive member %r would be written outside %s' % (name, dest))
    return target


def extract_archive(path, dest, required=()):
    """Extract a ``.tar`` (any compression) or ``.zip`` archive into ``dest`` safely.

    Parameters
    ----------
    path : str
    dest : str
        Created if missing.
    required : sequence of str
        Member paths that must be in the archive (checked before anything is written): an
        archive without them is not the expected one.

    Returns
    -------
    int
        Number of members extracted.

    Raises
    ------
    ArchiveError
        Unreadable, truncated or corrupt archive (CRC error, unexpected end of data), a member
        outside ``dest`` or a link, or a missing required member.
    """
    os.makedirs(dest, exist_ok=True)
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
                _check_required(path, names, required)
                for name in names:
                    _safe_target(dest, name)
                zf.extractall(dest)
                return len(names)
        except (zipfile.BadZipFile, EOFError, zlib.error) as err:
            raise ArchiveError('archive %s is corrupt or truncated (%s: %s)'
                               % (path, type(err).__name__, err))
    if path.lower().endswith('.zip'):
        raise ArchiveError('archive %s is not a readable zip file: truncated (the directory at '
                           'its end is missing) or not a zip archive' % path)
    try:
        with tarfile.open(path) as tf:
            members = tf.getmembers()
            _check_required(path, [m.name for m in members], required)
            for member in members:
                _safe_target(dest, member.name)
                if member.issym() or member.islnk():
                    raise ArchiveError('archive %s holds a link (%s): refusing to extract it'
                                       % (path, member.name))
            # Python >= 3.11.4: also let tarfile refuse unsafe members itself
            safe = {'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}
            tf.extractall(dest, members=members, **safe)
            return len(members)
    except (tarfile.TarError, EOFError) as err:
        raise ArchiveError('archive %s is corrupt or truncated (%s: %s)'
                           % (path, type(err).__name__, err))


def _check_required(path, names, required):
    present = set()
    for name in names:  # members and every folder above them (zips may omit folder entries)
        name = name.rstrip('/')
        while name and name not in present:
            present.add(name)
            name = name.rpartition('/')[0]
    missing = [r for r in required if r.rstrip('/') not in present]
    if missing:
        raise ArchiveError('archive %s is not the expected one: it lacks %s (it holds %d '
                           'entries, e.g. %s)' % (path, ', '.join(missing), len(names),
                                                   ', '.join(names[:3]) or 'none'))


def move_into_place(src, dst, overwrite=False):
    """Move an extracted folder to its final place (replacing it only with ``overwrite``).

    Parameters
    ----------
    src, dst : str
    overwrite : bool
    """
    if os.path.lexists(dst):
        if not overwrite:
            raise FileExistsError('%s already exists; pass --overwrite to replace it' % dst)
        if os.path.isdir(dst) and not os.path.islink(dst):
            shutil.rmtree(dst)
        else:
            os.remove(dst)
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    os.rename(src, dst)
