"""Training: losses, WGAN-GP steps, conditioning, augmentation, the VAE and GAN loops, the GAN checkpoint."""
