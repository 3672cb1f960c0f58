"""Errors of the models package (the tree is drawn in ``bidder.models``)."""

from __future__ import annotations

from pathlib import Path


class ModelError(ValueError):
    """A model, artefact or data file that cannot be used; the message names the file and the problem."""

    operator_error = True

    def __init__(self, where: str | Path, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = str(where)
        self.problem = problem


class ArtefactError(ModelError):
    """A model artefact that is missing, corrupt, truncated or of an incompatible format or kind."""


class DataError(ModelError):
    """Training or user data that cannot be parsed; the message names the file and the line."""


class FitError(ModelError):
    """Maximum-likelihood fitting did not converge to a usable model."""
