"""dlpractice: a hands-on deep-learning curriculum as working software."""

__version__ = "0.1.0"
