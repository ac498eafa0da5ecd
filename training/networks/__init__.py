"""The models only: the β-VAE and the GAN generator and critic."""
