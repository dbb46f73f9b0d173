"""The errors that are the user's to fix: the CLI prints them as one line instead of a traceback."""

from pixmorph.data.download import DownloadError
from pixmorph.images import ImageReadError
from pixmorph.train.checkpoint import CheckpointError
from pixmorph.train.loop import TrainingDiverged

USER_ERRORS = (FileNotFoundError, ValueError, ImageReadError, CheckpointError, DownloadError, TrainingDiverged,
               OSError)
