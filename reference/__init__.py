"""What the tests and the benchmarks both check the library against, kept apart from both:
an independent PyTorch GhostNet (`torch_ghostnet`) and a local weights server
(`weights_server`). Not part of the installed package."""
