"""Enable xconv's pytest plugin: the `xp` and `backend` fixtures, one run per backend."""

pytest_plugins = ["xconv.testing"]
