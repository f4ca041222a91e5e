"""The FFmpegPool Kubernetes operator (kopf): topology, workloads, queue-depth autoscaling.

Pure core (spec, decisions, manifests) and thin edges (kube, broker, flows).
See docs/operator.md.
"""
