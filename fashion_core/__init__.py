"""The TensorFlow-free core every other package imports: the serving contract, profile names,
version folders, atomic writes, file locks, sheet rendering, seed latents, models.config, the
admin token check and the training job runner.

Dependency direction (no cycles; nothing here imports another package of the project)::

    fashion_core  <-  export  <-  training
    fashion_core  <-  gateway
    fashion_core, gateway  <-  fashion_gan
"""
