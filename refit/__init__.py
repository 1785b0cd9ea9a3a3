"""refit: fine-tune, serve, monitor and retrain transformer text classifiers.

This folder is the command line, on top of every other layer; the layers themselves
(`core/`, `datagen/`, `training/`, `monitoring/`, `retraining/`, `service/` at the top of
the repository) install as `refit.core`, `refit.datagen`, and so on.
"""
