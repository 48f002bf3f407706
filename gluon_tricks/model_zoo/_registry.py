"""The model registry behind :func:`gluon_tricks.model_zoo.get_model`."""

_MODELS = {}


def register(*names):
    """Register a model factory under one or more names.

    Parameters
    ----------
    *names : str
        The names under which ``get_model`` finds the factory (GluonCV's names where
        GluonCV has the same model, e.g. ``'resnet50_v1d'``, ``'mobilenet1.0'``).
    """
    def wrap(fn):
        for name in names:
            if name in _MODELS:
                raise ValueError('model name %r is registered twice' % name)
            _MODELS[name] = fn
        return fn
    return wrap


def check_no_pretrained(name, pretrained):
    """Refuse ``pretrained=True``: nothing is downloaded; weights come from files."""
    if pretrained:
        raise ValueError(
            'gluon_tricks does not download pretrained weights (%s got pretrained=%r). Build '
            'the network with pretrained=False and load a .params file (ours, or one written '
            "by GluonCV's save_parameters for the same model name) with "
            'net.load_parameters(path).' % (name, pretrained))


def get_model(name, **kwargs):
    """Build a model of the zoo by name.

    Parameters
    ----------
    name : str
        Model name, e.g. ``'resnet50_v1d'``; ``get_model_list()`` lists them all.
    **kwargs
        Passed to the model's factory (``classes``, ``last_gamma``, ``dilated``, ...).

    Returns
    -------
    mxnet.gluon.HybridBlock
        The network, parameters not yet initialized.
    """
    key = name.lower()
    if key not in _MODELS:
        raise ValueError('unknown model name %r; valid names are: %s'
                         % (name, ', '.join(sorted(_MODELS))))
    net = _MODELS[key](**kwargs)
    net.model_name = key  # used in error messages and checkpoints
    return net


def get_model_list():
    """Return the sorted list of registered model names."""
    return sorted(_MODELS)
