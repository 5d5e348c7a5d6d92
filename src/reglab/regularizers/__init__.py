"""Regularizers: one object per regularizer (``reglab.regularizers.base``), built-in
or plug-in, registered through one seam."""
