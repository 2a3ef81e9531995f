"""The built-in task: the reference study's MLP on MNIST-style data (``task``), and the names
its space files use (``vocabulary``, which imports no torch, so views can read it)."""
