"""Networks: the architectures by name in one registry, the torch side of a model's input, and the recipes
that train them."""
