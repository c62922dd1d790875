-- Challenge 5: the tables behind events that are never lost and never applied twice.
--
-- outbox: one row per event, written by the very statement that changes the
-- task (lab/db/store.py), so an event exists if and only if its change
-- committed -- the transactional outbox. The relay publishes the rows whose
-- published_at is NULL and sets it once RabbitMQ has confirmed them; the
-- partial index keeps "what is left to publish" small however long the table.
CREATE TABLE outbox (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),  -- the event's id and message_id
    type         text NOT NULL CHECK (type IN ('task.created', 'task.updated', 'task.deleted')),
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    payload      jsonb NOT NULL,
    published_at timestamptz  -- NULL until the broker confirmed the publish
);
CREATE INDEX outbox_unpublished_idx ON outbox (occurred_at) WHERE published_at IS NULL;

-- processed_messages: the ids of the messages whose effect has been applied,
-- inserted in the same transaction as the effect (INSERT ... ON CONFLICT DO
-- NOTHING): a redelivered or duplicated message finds its id and changes
-- nothing. Old rows are deleted on a schedule, by processed_at.
CREATE TABLE processed_messages (
    message_id   uuid PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX processed_messages_processed_at_idx ON processed_messages (processed_at);

-- notifications: the workers' demo effect. message_id is deliberately not
-- unique, so that an effect applied twice would show as two rows.
CREATE TABLE notifications (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id uuid NOT NULL,
    event_type text NOT NULL,
    task_id    integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_message_id_idx ON notifications (message_id);
