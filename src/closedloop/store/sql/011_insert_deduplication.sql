-- Exactly-once inserts. The exporter gives every batch an id and inserts it with
-- insert_deduplication_token = id, so a batch sent again (a retry after a lost answer,
-- or a spooled batch replayed after a crash between its insert and the removal of its
-- spool file) is stored once. Non-replicated MergeTree tables deduplicate only with a
-- window (off by default): the ids of the last 10000 blocks each table stored. The
-- targets of the views fed by the trace tables get the window too: ClickHouse (24.7 on)
-- runs a table's materialized views for a duplicate block as well, and their targets
-- drop the copy only with a window of their own. An insert spanning several days is one
-- block per day.
--
-- With the window on, inserts without a token are deduplicated by their content: an
-- identical block (the same rows in the same order) sent again, by the collector's retry
-- for instance, is also stored once.
ALTER TABLE ${database}.otel_traces
    MODIFY SETTING non_replicated_deduplication_window = 10000;

ALTER TABLE ${database}.otel_traces_recent
    MODIFY SETTING non_replicated_deduplication_window = 10000;

ALTER TABLE ${database}.otel_traces_trace_id_ts
    MODIFY SETTING non_replicated_deduplication_window = 10000;

ALTER TABLE ${database}.llm_calls
    MODIFY SETTING non_replicated_deduplication_window = 10000;

ALTER TABLE ${database}.llm_call_content
    MODIFY SETTING non_replicated_deduplication_window = 10000;

ALTER TABLE ${database}.feedback_signals
    MODIFY SETTING non_replicated_deduplication_window = 10000;

ALTER TABLE ${database}.feedback_arrivals
    MODIFY SETTING non_replicated_deduplication_window = 10000;
