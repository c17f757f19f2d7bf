"""Training: the loop, the line model's training, teaching one person's hand."""
