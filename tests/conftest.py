"""xconv's suite runs on its own pytest plugin, `xconv.testing`.

It gives the `xp` and `backend` fixtures, parametrized over the backends under test:
``--xconv-backends`` or ``XCONV_TEST_BACKENDS`` (a comma list, e.g. ``numpy,torch``);
by default, every backend usable here. A backend named there but not usable here is a
skip that says why, never a silent pass; an unknown name is a usage error.
"""

# pytester runs small test files in-process, for tests/test_testing_plugin.py
pytest_plugins = ["xconv.testing", "pytester"]
