-- Run ledger events (started / succeeded / failed / abandoned), one row per ledger row.
with source as (
    select * from {{ source('control', 'run_ledger') }}
),

renamed as (
    select
        cast(seq as bigint) as ledger_seq,
        cast(run_id as varchar) as run_id,
        cast(event as varchar) as event,
        cast(trigger as varchar) as trigger,
        cast(who as varchar) as who,
        cast(started_at as timestamptz) as started_at,
        cast(ended_at as timestamptz) as ended_at,
        cast(stages as varchar) as stages,
        cast(package_version as varchar) as package_version,
        cast(git_commit as varchar) as git_commit,
        json_extract_string(cast(detail as varchar), '$.error') as error
    from source
)

select * from renamed
