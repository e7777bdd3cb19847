"""The worker: the Faust agents, the command executor, publishing, link store and metrics."""
