"""Keras and tfmot, imported in one place (tfcompat sets TF_USE_LEGACY_KERAS=1 first); builders, model I/O."""
