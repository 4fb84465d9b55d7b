"""Mail: the transactional outbox, message kinds, renderers and senders."""
