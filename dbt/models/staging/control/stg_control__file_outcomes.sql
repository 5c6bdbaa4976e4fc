-- Validation verdicts of landed files (one row per verdict; a re-validation adds a row).
with source as (
    select * from {{ source('control', 'file_outcomes') }}
),

renamed as (
    select
        cast(seq as bigint) as outcome_seq,
        cast(manifest_seq as bigint) as manifest_seq,
        cast(outcome as varchar) as outcome,
        cast(reason_kind as varchar) as reason_kind,
        cast(rows_accepted as bigint) as rows_accepted,
        cast(rows_flagged as bigint) as rows_flagged,
        cast(rows_rejected as bigint) as rows_rejected,
        cast(suite as varchar) as suite,
        cast(run_id as varchar) as validation_run_id,
        cast(decided_at as timestamptz) as decided_at
    from source
)

select * from renamed
