-- /api/feedback, first step: the time no earlier than the newest `depth` rows the page
-- could hold, NULL when there are fewer than `depth` candidates (then feedback_page.sql
-- reads every trace). A row of the feedback view has its call's time (a call without
-- feedback) or its signal's: the candidates are the calls and signals in the window,
-- each filtered by what it decides alone (prompt and version a call's row, name and type
-- a signal's; with name or type given, no call row qualifies).
SELECT if(count() < {depth:UInt32}, NULL, toUnixTimestamp64Nano(min(timestamp))) AS floor_ns
FROM (
    SELECT timestamp
    FROM (
        SELECT timestamp
        FROM ${database}.llm_calls
        WHERE {name:Nullable(String)} IS NULL AND {type:Nullable(String)} IS NULL
          AND ({prompt:Nullable(String)} IS NULL OR prompt_name = {prompt:Nullable(String)})
          AND ({version:Nullable(String)} IS NULL OR prompt_version = {version:Nullable(String)})
          AND ({from_ns:Nullable(Int64)} IS NULL
                OR timestamp >= fromUnixTimestamp64Nano({from_ns:Nullable(Int64)}))
          AND ({to_ns:Nullable(Int64)} IS NULL
                OR timestamp <= fromUnixTimestamp64Nano({to_ns:Nullable(Int64)}))
          AND ({cursor_ns:Nullable(Int64)} IS NULL
                OR timestamp <= fromUnixTimestamp64Nano({cursor_ns:Nullable(Int64)}))
        ORDER BY timestamp DESC
        LIMIT {depth:UInt32}
        UNION ALL
        SELECT timestamp
        FROM ${database}.feedback_signals
        WHERE ({name:Nullable(String)} IS NULL OR name = {name:Nullable(String)})
          AND ({type:Nullable(String)} IS NULL OR kind = {type:Nullable(String)})
          AND ({from_ns:Nullable(Int64)} IS NULL
                OR timestamp >= fromUnixTimestamp64Nano({from_ns:Nullable(Int64)}))
          AND ({to_ns:Nullable(Int64)} IS NULL
                OR timestamp <= fromUnixTimestamp64Nano({to_ns:Nullable(Int64)}))
          AND ({cursor_ns:Nullable(Int64)} IS NULL
                OR timestamp <= fromUnixTimestamp64Nano({cursor_ns:Nullable(Int64)}))
        ORDER BY timestamp DESC
        LIMIT {depth:UInt32}
    )
    ORDER BY timestamp DESC
    LIMIT {depth:UInt32}
)
