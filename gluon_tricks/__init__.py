"""gluon-tricks: the "Bag of Tricks for Image Classification" (He et al., 2018) in MXNet/Gluon."""
__version__ = '0.1.0'
