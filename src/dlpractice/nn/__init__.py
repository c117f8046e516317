"""Torch building blocks used by three or more labs."""
