-- migrate:up

-- A conversation is the pair of participants on one kind of channel: SMS and MMS
-- share the kind 'sms', email has its own. The pair is stored normalised and
-- ordered (participant_a <= participant_b) so that both directions meet in one row.
CREATE TABLE conversations (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text        NOT NULL CHECK (kind IN ('sms', 'email')),
    participant_a    text        NOT NULL,
    participant_b    text        NOT NULL,
    message_count    integer     NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    last_activity_at timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT conversations_participants_ordered CHECK (participant_a <= participant_b),
    CONSTRAINT conversations_kind_participants_key UNIQUE (kind, participant_a, participant_b)
);

-- The conversation list: newest activity first, ties by id.
CREATE INDEX conversations_last_activity_idx ON conversations (last_activity_at DESC, id DESC);

-- migrate:down
DROP TABLE conversations;
