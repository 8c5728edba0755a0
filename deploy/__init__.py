"""Deployment assets (Dockerfiles, compose, Kubernetes, coturn and LiveKit configs) and the
embedded development stack that `pawhub up` and the tests start when no service URL is set."""
