"""The FFmpegPool Kubernetes operator (kopf): topology, workloads, queue-depth autoscaling.

Pure core (models, crd, builders, scaling, plans) and thin edges (broker, kube, handlers).
See docs/operator.md.
"""
