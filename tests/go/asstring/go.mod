module closedloop/asstringcheck

go 1.26

require go.opentelemetry.io/collector/pdata v1.67.0
