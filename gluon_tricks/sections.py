"""The base of every configuration section: a dataclass whose fields are argparse dests."""
import argparse
import dataclasses
import json
import textwrap

__all__ = ['Section', 'flag', 'mode_flag', 'check_positive', 'HelpFormatter', 'first_paragraph']


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


def flag(default, *option_strings, shown=None, tasks=None, also=(), **argparse_kwargs):
    """A dataclass field that is also a flag, declared once.

    ``default`` is the field's default and the flag's (a list: a fresh copy per instance).
    ``option_strings`` default to ``--field-name``; several are aliases of the one dest (the
    field's name). ``argparse_kwargs`` go to ``add_argument`` as they are (``help``, ``type``,
    ``action``, ``nargs``, ``metavar``, ...), except ``choices`` may be a function returning
    them (called when the parser is built: choices of a module not to import before) and a
    ``required`` flag gets no default. ``shown(value)`` turns the field's value into the
    flag's default (a comma list the field parses in ``__post_init__``); ``tasks``: only the
    parsers of these tasks have the flag; ``also``: more ``(option_strings, kwargs)`` flags of
    the same dest, without a default (``--disable-hybridization`` for ``--mode imperative``).
    """
    metadata = {'flags': option_strings, 'argparse': argparse_kwargs, 'shown': shown,
                'tasks': tasks, 'also': tuple(also)}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def mode_flag():
    """The ``mode`` field of a model section: ``--mode`` and ``--disable-hybridization``."""
    return flag('hybrid', choices=['hybrid', 'imperative'],
                help='hybrid: hybridize the network (static graph)',
                also=[(('--disable-hybridization',),
                       dict(action='store_const', const='imperative',
                            help='same as --mode imperative'))])


def _default(field):
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


class Section(object):
    """A dataclass whose fields are argparse dests: its flags (:meth:`add_args`, from the
    fields declared with :func:`flag`), ``from_args``, ``to_dict`` and ``from_dict``."""

    #: The title of the section's argument group in ``--help``.
    title = None
    #: The error of :meth:`from_dict` for unknown keys (``section``, ``names``, ``known``).
    unknown_fields = '%(section)s has no field(s) %(names)s'

    @classmethod
    def add_args(cls, parser, defaults=None, task=None):
        """Add the argument group :attr:`title` with the flags of the fields, in field order.

        ``defaults`` (field name -> value: a task's recipe) replace the fields' defaults;
        ``task`` selects the flags declared for some tasks only. Returns the group."""
        defaults = dict(defaults or {})
        fields = [f for f in dataclasses.fields(cls) if 'flags' in f.metadata]
        unknown = sorted(set(defaults) - {f.name for f in fields})
        if unknown:
            raise ValueError('%s has no flag(s) %s' % (cls.__name__, ', '.join(unknown)))
        group = parser.add_argument_group(cls.title)
        for f in fields:
            meta = f.metadata
            if meta['tasks'] is not None and task not in meta['tasks']:
                continue
            kwargs = dict(meta['argparse'])
            if callable(kwargs.get('choices')):
                kwargs['choices'] = kwargs['choices']()
            if not kwargs.get('required'):
                value = defaults.get(f.name, _default(f))
                kwargs['default'] = meta['shown'](value) if meta['shown'] else value
            group.add_argument(*(meta['flags'] or ('--' + f.name.replace('_', '-'),)),
                               dest=f.name, **kwargs)
            for option_strings, more in meta['also']:
                group.add_argument(*option_strings, dest=f.name, **more)
        return group

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
            raise ValueError(cls.unknown_fields % {'section': cls.__name__,
                                                   'names': ', '.join(unknown),
                                                   'known': ', '.join(sorted(names))})
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

