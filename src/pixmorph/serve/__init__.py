"""``pixmorph serve``: the served checkpoints behind an HTTP API and a page in the same process.

:func:`pixmorph.serve.app.create_app` builds the app; :mod:`~pixmorph.serve.models` loads and describes
the checkpoints; :mod:`~pixmorph.serve.uploads` bounds and decodes what requests send;
:mod:`~pixmorph.serve.work_queue` runs the networks one call at a time.
"""
