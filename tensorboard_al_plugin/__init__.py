"""tensorboard-al: label a dataset by looking at it, inside TensorBoard.

Public API for training scripts::

    from tensorboard_al_plugin import write_embedding
    write_embedding("logs", features, name="digits", images=images, metadata={"digit": y})
"""

__version__ = "0.1.0"


def write_embedding(*args, **kwargs):
    # Imported on use: TensorBoard imports this package at start-up, and the
    # writer pulls in Pillow and protobuf.
    from .logdir.embeddings import write_embedding as _write

    return _write(*args, **kwargs)


write_embedding.__doc__ = """Write features, thumbnails, metadata and labels into a log directory.

See tensorboard_al_plugin.logdir.embeddings.write_embedding for the arguments."""

__all__ = ["write_embedding", "__version__"]
