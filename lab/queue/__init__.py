"""Challenge 5: task events through RabbitMQ -- topology, outbox relay, consumer (aiormq)."""
