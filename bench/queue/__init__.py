"""Challenge 5's benchmarks: the lab's consumer against aio-pika's, the relay, end to end.

``test_consumers.py`` drains preloaded work queues with each consumer, in processes
of their own (``consumers.py``); ``test_relay.py`` times the outbox relay
(``timed_relay.py``); ``test_end_to_end.py`` runs the API, the relay and the worker
as processes and times a POST to its effect. ``stage.py`` sets the stage they share:
a private RabbitMQ topology and the ``bench_queue`` schema.
"""
