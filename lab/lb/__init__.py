"""Challenge 4: a hand-built HTTP/1.1 reverse proxy -- framer, header rules, balancer, health."""
