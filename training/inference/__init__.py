"""What the web workers import: loading a trained generator, generate(), latent operations."""
