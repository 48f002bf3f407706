"""Developer and reproduction tools of gluon-tricks: never imported by the library."""
