"""The exercise checks: the tests `dlp check` runs against a learner's workspace, shipped with the package.

One file per lab (`test_<id>_<slug>.py`). A check is an ordinary test marked `@pytest.mark.exercise(id)`
that takes the implementation as its `impl` parameter (see practice/pytest_plugin.py): the package's own
module when run by `make test`, the learner's file when run by `dlp check`. Each assert says in words
what was expected, because its first line is all the learner sees in `dlp check`'s table.

They live inside the package, not in the repository's tests/, so that a wheel installed anywhere can
grade. To run them by hand: `pytest -p dlpractice.practice.pytest_plugin src/dlpractice/practice/checks`.
"""
