"""Checks of the files the code under test writes."""


def is_png(path):
    """Whether ``path`` starts with the PNG signature."""
    with open(path, 'rb') as f:
        return f.read(8) == b'\x89PNG\r\n\x1a\n'
