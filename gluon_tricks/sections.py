"""The base of every configuration section: a dataclass whose fields are argparse dests."""
import argparse
import dataclasses
import json
import textwrap

__all__ = ['Section', 'check_positive', 'add_mode', 'HelpFormatter', 'first_paragraph']


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """The scripts' ``--help``: "(default: X)" only where it says something (not for None or
    False, nor where the help states its default), no line break inside a hyphenated flag."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or \
                'default' in (action.help or ''):
            return action.help
        return super(HelpFormatter, self)._get_help_string(action)

    def _split_lines(self, text, width):
        return textwrap.wrap(' '.join(text.split()), width, break_on_hyphens=False)


def first_paragraph(doc):
    """A script's description: the first paragraph of its docstring, on one line."""
    return ' '.join((doc or '').split('\n\n')[0].split())


class Section(object):
    """``from_args``/``to_dict``/``from_dict`` of a dataclass whose fields are argparse dests."""

    @classmethod
    def from_args(cls, args):
        """The section of parsed flags; fields the parser lacks keep their defaults."""
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
                      if hasattr(args, f.name)})

    def to_dict(self):
        """JSON-ready dict: field name (= argparse dest) -> value (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values):
        """Inverse of :meth:`to_dict`; an unknown key is an error naming it."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError('%s has no field(s) %s' % (cls.__name__, ', '.join(unknown)))
        return cls(**values)

    def check(self):
        """Raise ``ValueError`` naming the flag of a value that cannot work."""

    def check_with(self, cfg):
        """The checks of a model section that need the other sections of ``cfg``."""


def check_positive(section, *names):
    for name in names:
        value = getattr(section, name)
        if value is not None and value < 1:
            raise ValueError('--%s must be positive, got %r' % (name.replace('_', '-'), value))


def add_mode(group):
    group.add_argument('--mode', default='hybrid', choices=['hybrid', 'imperative'],
                       help='hybrid: hybridize the network (static graph)')
    group.add_argument('--disable-hybridization', dest='mode', action='store_const',
                       const='imperative', help='same as --mode imperative')
