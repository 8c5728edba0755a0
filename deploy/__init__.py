"""Deployment assets (the image, compose, Kubernetes, nginx, coturn, Janus and Grafana) and the
embedded development stack that `pawhub up` and the tests start when no service URL is set."""
