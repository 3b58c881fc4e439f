\restrict dbmate

-- Dumped from database version 18.6
-- Dumped by pg_dump version 18.6

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET transaction_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: api_keys_notify_v1(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.api_keys_notify_v1() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_notify('api_keys', CASE WHEN TG_OP = 'DELETE' THEN OLD.name ELSE NEW.name END);
    RETURN NULL;
END;
$$;


--
-- Name: conversations_counted_v1(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.conversations_counted_v1() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO conversation_counts (n)
    SELECT count(*) FROM inserted_rows HAVING count(*) > 0;
    RETURN NULL;
END;
$$;


--
-- Name: inbound_events_notify_v1(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.inbound_events_notify_v1() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted_rows) THEN
        PERFORM pg_notify('inbound_events', '');
    END IF;
    RETURN NULL;
END;
$$;


--
-- Name: messages_stream_created_v1(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.messages_stream_created_v1() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO stream_events (type, conversation_id, message_id, status)
    SELECT 'message.created', n.conversation_id, n.id, n.status
    FROM inserted_rows AS n
    ORDER BY n.id;
    IF FOUND THEN
        PERFORM pg_notify('stream_events', '');
    END IF;
    RETURN NULL;
END;
$$;


--
-- Name: messages_stream_updated_v1(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.messages_stream_updated_v1() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO stream_events (type, conversation_id, message_id, status)
    SELECT 'message.updated', n.conversation_id, n.id, n.status
    FROM updated_rows AS n
    JOIN previous_rows AS o ON o.id = n.id
    WHERE o.status IS DISTINCT FROM n.status
    ORDER BY n.id;
    IF FOUND THEN
        PERFORM pg_notify('stream_events', '');
    END IF;
    RETURN NULL;
END;
$$;


--
-- Name: outbound_messages_notify_v1(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.outbound_messages_notify_v1() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM inserted_rows WHERE direction = 'outbound' AND status = 'queued'
    ) THEN
        PERFORM pg_notify('outbound_messages', '');
    END IF;
    RETURN NULL;
END;
$$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: api_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.api_keys (
    id bigint NOT NULL,
    name text NOT NULL,
    scopes text[] NOT NULL,
    secret_sha256 bytea NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    revoked_at timestamp with time zone,
    last_used_at timestamp with time zone,
    CONSTRAINT api_keys_name_check CHECK ((name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'::text)),
    CONSTRAINT api_keys_scopes_check CHECK (((cardinality(scopes) > 0) AND (scopes <@ ARRAY['send'::text, 'read'::text, 'admin'::text]))),
    CONSTRAINT api_keys_secret_sha256_check CHECK ((length(secret_sha256) = 32))
);


--
-- Name: api_keys_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.api_keys ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.api_keys_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: conversation_counts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.conversation_counts (
    id bigint NOT NULL,
    n bigint NOT NULL
);


--
-- Name: conversation_counts_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.conversation_counts ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.conversation_counts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: conversations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.conversations (
    id bigint NOT NULL,
    kind text NOT NULL,
    participant_a text NOT NULL COLLATE pg_catalog."C",
    participant_b text NOT NULL COLLATE pg_catalog."C",
    message_count integer DEFAULT 0 NOT NULL,
    last_activity_at timestamp with time zone NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT conversations_kind_check CHECK ((kind = ANY (ARRAY['sms'::text, 'email'::text]))),
    CONSTRAINT conversations_message_count_check CHECK ((message_count >= 0)),
    CONSTRAINT conversations_participants_ordered CHECK ((participant_a <= participant_b))
);


--
-- Name: conversations_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.conversations ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.conversations_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: idempotency_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.idempotency_keys (
    key text NOT NULL,
    endpoint text NOT NULL,
    request_hash text NOT NULL,
    message_id bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT idempotency_keys_endpoint_check CHECK ((endpoint = ANY (ARRAY['sms'::text, 'email'::text]))),
    CONSTRAINT idempotency_keys_key_check CHECK (((length(key) >= 1) AND (length(key) <= 256)))
)
WITH (autovacuum_vacuum_scale_factor='0.02');


--
-- Name: inbound_events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.inbound_events (
    id bigint NOT NULL,
    channel text NOT NULL,
    provider_message_id text NOT NULL,
    message_type text NOT NULL,
    from_address text NOT NULL,
    to_address text NOT NULL,
    payload jsonb NOT NULL,
    status text DEFAULT 'received'::text NOT NULL,
    attempt_count integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    processor_id text,
    claimed_at timestamp with time zone,
    last_error text,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    processed_at timestamp with time zone,
    CONSTRAINT inbound_events_attempt_count_check CHECK ((attempt_count >= 0)),
    CONSTRAINT inbound_events_channel_check CHECK ((channel = ANY (ARRAY['sms'::text, 'email'::text]))),
    CONSTRAINT inbound_events_channel_matches_type CHECK ((((channel = 'sms'::text) AND (message_type = ANY (ARRAY['sms'::text, 'mms'::text]))) OR ((channel = 'email'::text) AND (message_type = 'email'::text)))),
    CONSTRAINT inbound_events_message_type_check CHECK ((message_type = ANY (ARRAY['sms'::text, 'mms'::text, 'email'::text]))),
    CONSTRAINT inbound_events_processing_has_claim CHECK (((status <> 'processing'::text) OR ((processor_id IS NOT NULL) AND (claimed_at IS NOT NULL)))),
    CONSTRAINT inbound_events_provider_message_id_check CHECK (((length(provider_message_id) >= 1) AND (length(provider_message_id) <= 256))),
    CONSTRAINT inbound_events_status_check CHECK ((status = ANY (ARRAY['received'::text, 'processing'::text, 'processed'::text, 'error'::text, 'dead_letter'::text])))
)
WITH (autovacuum_vacuum_scale_factor='0.02');


--
-- Name: inbound_events_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.inbound_events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.inbound_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: messages; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.messages (
    id bigint NOT NULL,
    conversation_id bigint NOT NULL,
    inbound_event_id bigint,
    direction text NOT NULL,
    message_type text NOT NULL,
    from_address text NOT NULL,
    to_address text NOT NULL,
    body text NOT NULL,
    attachments jsonb DEFAULT '[]'::jsonb NOT NULL,
    sent_at timestamp with time zone NOT NULL,
    status text NOT NULL,
    provider_message_id text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    delivery_attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    processor_id text,
    claimed_at timestamp with time zone,
    last_error text,
    delivered_at timestamp with time zone,
    CONSTRAINT messages_attachments_check CHECK ((jsonb_typeof(attachments) = 'array'::text)),
    CONSTRAINT messages_delivery_attempts_check CHECK ((delivery_attempts >= 0)),
    CONSTRAINT messages_direction_check CHECK ((direction = ANY (ARRAY['inbound'::text, 'outbound'::text]))),
    CONSTRAINT messages_inbound_has_event CHECK (((direction <> 'inbound'::text) OR (inbound_event_id IS NOT NULL))),
    CONSTRAINT messages_inbound_has_provider_id CHECK (((direction <> 'inbound'::text) OR (provider_message_id IS NOT NULL))),
    CONSTRAINT messages_message_type_check CHECK ((message_type = ANY (ARRAY['sms'::text, 'mms'::text, 'email'::text]))),
    CONSTRAINT messages_sending_has_claim CHECK (((status <> 'sending'::text) OR ((processor_id IS NOT NULL) AND (claimed_at IS NOT NULL)))),
    CONSTRAINT messages_sent_has_provider_id CHECK (((status <> 'sent'::text) OR (provider_message_id IS NOT NULL))),
    CONSTRAINT messages_status_check CHECK ((status = ANY (ARRAY['received'::text, 'queued'::text, 'sending'::text, 'sent'::text, 'failed'::text]))),
    CONSTRAINT messages_status_matches_direction CHECK ((((direction = 'inbound'::text) AND (status = 'received'::text)) OR ((direction = 'outbound'::text) AND (status = ANY (ARRAY['queued'::text, 'sending'::text, 'sent'::text, 'failed'::text])))))
)
WITH (autovacuum_vacuum_scale_factor='0.02');


--
-- Name: messages_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.messages ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.messages_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: processes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.processes (
    id text NOT NULL,
    kind text NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    version text NOT NULL,
    heartbeat_secs double precision NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    heartbeat_at timestamp with time zone DEFAULT now() NOT NULL,
    listener_state text NOT NULL,
    listener_since timestamp with time zone NOT NULL,
    CONSTRAINT processes_heartbeat_secs_check CHECK ((heartbeat_secs > (0)::double precision)),
    CONSTRAINT processes_id_check CHECK (((length(id) >= 1) AND (length(id) <= 300))),
    CONSTRAINT processes_kind_check CHECK ((kind = ANY (ARRAY['serve'::text, 'api'::text, 'worker'::text]))),
    CONSTRAINT processes_listener_state_check CHECK ((listener_state = ANY (ARRAY['listening'::text, 'connecting'::text, 'reconnecting'::text, 'off'::text])))
);


--
-- Name: retention_state; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.retention_state (
    one boolean DEFAULT true NOT NULL,
    last_batch_at timestamp with time zone NOT NULL,
    CONSTRAINT retention_state_one_check CHECK (one)
);


--
-- Name: schema_migrations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_migrations (
    version character varying NOT NULL
);


--
-- Name: schema_triggers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_triggers (
    file text NOT NULL,
    sha256 text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: stream_events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.stream_events (
    xid xid8 DEFAULT pg_current_xact_id() NOT NULL,
    id bigint NOT NULL,
    type text NOT NULL,
    conversation_id bigint NOT NULL,
    message_id bigint NOT NULL,
    status text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT stream_events_type_check CHECK ((type = ANY (ARRAY['message.created'::text, 'message.updated'::text])))
)
WITH (autovacuum_vacuum_scale_factor='0.02');


--
-- Name: stream_events_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.stream_events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.stream_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: stream_horizon; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.stream_horizon (
    one boolean DEFAULT true NOT NULL,
    xid xid8 NOT NULL,
    id bigint NOT NULL,
    CONSTRAINT stream_horizon_one_check CHECK (one)
);


--
-- Name: api_keys api_keys_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_name_key UNIQUE (name);


--
-- Name: api_keys api_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);


--
-- Name: api_keys api_keys_secret_sha256_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_secret_sha256_key UNIQUE (secret_sha256);


--
-- Name: conversation_counts conversation_counts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversation_counts
    ADD CONSTRAINT conversation_counts_pkey PRIMARY KEY (id);


--
-- Name: conversations conversations_kind_participants_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversations
    ADD CONSTRAINT conversations_kind_participants_key UNIQUE (kind, participant_a, participant_b);


--
-- Name: conversations conversations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.conversations
    ADD CONSTRAINT conversations_pkey PRIMARY KEY (id);


--
-- Name: idempotency_keys idempotency_keys_message_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.idempotency_keys
    ADD CONSTRAINT idempotency_keys_message_id_key UNIQUE (message_id);


--
-- Name: idempotency_keys idempotency_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.idempotency_keys
    ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (key);


--
-- Name: inbound_events inbound_events_channel_provider_message_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.inbound_events
    ADD CONSTRAINT inbound_events_channel_provider_message_id_key UNIQUE (channel, provider_message_id);


--
-- Name: inbound_events inbound_events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.inbound_events
    ADD CONSTRAINT inbound_events_pkey PRIMARY KEY (id);


--
-- Name: messages messages_inbound_event_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.messages
    ADD CONSTRAINT messages_inbound_event_id_key UNIQUE (inbound_event_id);


--
-- Name: messages messages_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.messages
    ADD CONSTRAINT messages_pkey PRIMARY KEY (id);


--
-- Name: processes processes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.processes
    ADD CONSTRAINT processes_pkey PRIMARY KEY (id);


--
-- Name: retention_state retention_state_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.retention_state
    ADD CONSTRAINT retention_state_pkey PRIMARY KEY (one);


--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);


--
-- Name: schema_triggers schema_triggers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_triggers
    ADD CONSTRAINT schema_triggers_pkey PRIMARY KEY (file);


--
-- Name: stream_events stream_events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.stream_events
    ADD CONSTRAINT stream_events_pkey PRIMARY KEY (xid, id);


--
-- Name: stream_horizon stream_horizon_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.stream_horizon
    ADD CONSTRAINT stream_horizon_pkey PRIMARY KEY (one);


--
-- Name: conversations_last_activity_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX conversations_last_activity_idx ON public.conversations USING btree (last_activity_at DESC, id DESC);


--
-- Name: idempotency_keys_created_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idempotency_keys_created_at_idx ON public.idempotency_keys USING btree (created_at);


--
-- Name: inbound_events_claimed_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX inbound_events_claimed_idx ON public.inbound_events USING btree (claimed_at) WHERE (status = 'processing'::text);


--
-- Name: inbound_events_dead_letter_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX inbound_events_dead_letter_idx ON public.inbound_events USING btree (id) WHERE (status = 'dead_letter'::text);


--
-- Name: inbound_events_due_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX inbound_events_due_idx ON public.inbound_events USING btree (next_attempt_at) WHERE (status = ANY (ARRAY['received'::text, 'error'::text]));


--
-- Name: inbound_events_processed_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX inbound_events_processed_idx ON public.inbound_events USING btree (received_at) WHERE (status = 'processed'::text);


--
-- Name: messages_conversation_sent_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX messages_conversation_sent_at_idx ON public.messages USING btree (conversation_id, sent_at, id);


--
-- Name: messages_failed_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX messages_failed_idx ON public.messages USING btree (id) WHERE (status = 'failed'::text);


--
-- Name: messages_inbound_provider_key; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX messages_inbound_provider_key ON public.messages USING btree ((
CASE
    WHEN (message_type = 'email'::text) THEN 'email'::text
    ELSE 'sms'::text
END), provider_message_id) WHERE (direction = 'inbound'::text);


--
-- Name: messages_outbound_claimed_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX messages_outbound_claimed_idx ON public.messages USING btree (claimed_at) WHERE (status = 'sending'::text);


--
-- Name: messages_outbound_due_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX messages_outbound_due_idx ON public.messages USING btree (next_attempt_at) WHERE (status = 'queued'::text);


--
-- Name: api_keys api_keys_notify_insert_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER api_keys_notify_insert_delete AFTER INSERT OR DELETE ON public.api_keys FOR EACH ROW EXECUTE FUNCTION public.api_keys_notify_v1();


--
-- Name: api_keys api_keys_notify_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER api_keys_notify_update AFTER UPDATE ON public.api_keys FOR EACH ROW WHEN (((old.name IS DISTINCT FROM new.name) OR (old.scopes IS DISTINCT FROM new.scopes) OR (old.secret_sha256 IS DISTINCT FROM new.secret_sha256) OR (old.revoked_at IS DISTINCT FROM new.revoked_at))) EXECUTE FUNCTION public.api_keys_notify_v1();


--
-- Name: conversations conversations_counted; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER conversations_counted AFTER INSERT ON public.conversations REFERENCING NEW TABLE AS inserted_rows FOR EACH STATEMENT EXECUTE FUNCTION public.conversations_counted_v1();


--
-- Name: inbound_events inbound_events_notify; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER inbound_events_notify AFTER INSERT ON public.inbound_events REFERENCING NEW TABLE AS inserted_rows FOR EACH STATEMENT EXECUTE FUNCTION public.inbound_events_notify_v1();


--
-- Name: messages messages_outbound_notify; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER messages_outbound_notify AFTER INSERT ON public.messages REFERENCING NEW TABLE AS inserted_rows FOR EACH STATEMENT EXECUTE FUNCTION public.outbound_messages_notify_v1();


--
-- Name: messages messages_stream_created; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER messages_stream_created AFTER INSERT ON public.messages REFERENCING NEW TABLE AS inserted_rows FOR EACH STATEMENT EXECUTE FUNCTION public.messages_stream_created_v1();


--
-- Name: messages messages_stream_updated; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER messages_stream_updated AFTER UPDATE ON public.messages REFERENCING OLD TABLE AS previous_rows NEW TABLE AS updated_rows FOR EACH STATEMENT EXECUTE FUNCTION public.messages_stream_updated_v1();


--
-- Name: idempotency_keys idempotency_keys_message_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.idempotency_keys
    ADD CONSTRAINT idempotency_keys_message_id_fkey FOREIGN KEY (message_id) REFERENCES public.messages(id);


--
-- Name: messages messages_conversation_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.messages
    ADD CONSTRAINT messages_conversation_id_fkey FOREIGN KEY (conversation_id) REFERENCES public.conversations(id);


--
-- PostgreSQL database dump complete
--

\unrestrict dbmate


--
-- Dbmate schema migrations
--

INSERT INTO public.schema_migrations (version) VALUES
    ('20261127000001'),
    ('20261127000002'),
    ('20261127000003'),
    ('20261127000004'),
    ('20261127000010'),
    ('20261127000020'),
    ('20261127000021'),
    ('20261201000000'),
    ('20261206000000'),
    ('20261206120000'),
    ('20261206120001'),
    ('20261206120002'),
    ('20261206120003'),
    ('20261206120004'),
    ('20261206120100'),
    ('20261206120110'),
    ('20261206120111'),
    ('20261206120200'),
    ('20261206120300');
