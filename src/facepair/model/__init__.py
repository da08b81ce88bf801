"""The model: autoencoder.py (the whole pair on one screen), upconv.py, discriminator.py,
presets.py (named recipes as data), store.py (a model folder: state.json, weights, load_model)."""
