"""Tests for reglab.data's public surface: what __init__ promises is there."""

import reglab.data


def test_every_public_name_is_exported_with_a_one_line_docstring():
    for name in reglab.data.__all__:
        obj = getattr(reglab.data, name)
        if callable(obj) and not isinstance(obj, tuple):
            doc = obj.__doc__ or ""
            assert doc.strip() and "\n" not in doc.strip(), name


def test_package_docstring_lists_every_public_function():
    for name in reglab.data.__all__:
        assert name in reglab.data.__doc__, name
