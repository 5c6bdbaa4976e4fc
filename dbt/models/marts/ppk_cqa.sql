-- Grain: one row per product x numeric CQA x specification version: process performance (Ppk) of the batches'
-- reportable results tested against that version. Ppk = min(USL - mean, mean - LSL) / (3 s) with s the sample
-- standard deviation; one-sided (Ppl or Ppu) for one-sided specs (>=, >, <=, <). Pass/fail assays and censored
-- results are excluded (int_cqa_observations); Ppk is NULL below 2 results or when s = 0.
with stats as (
    select
        product_code,
        attribute,
        spec_id,
        spec_version,
        operator,
        lsl,
        usl,
        any_value(unit) as unit,
        count(*) as results,
        min(batch_started_at) as first_batch_started_at,
        max(batch_started_at) as last_batch_started_at,
        avg(value) as mean_value,
        stddev_samp(value) as sd_value,
        count(*) filter (where conformance = 'oos') as results_oos
    from {{ ref('int_cqa_observations') }}
    group by product_code, attribute, spec_id, spec_version, operator, lsl, usl
),

indices as (
    select
        *,
        (mean_value - lsl) / nullif(3 * sd_value, 0) as ppl,
        (usl - mean_value) / nullif(3 * sd_value, 0) as ppu
    from stats
)

select
    *,
    case
        when operator in ('>=', '>') then 'lower'
        when operator in ('<=', '<') then 'upper'
        else 'two-sided'
    end as spec_sides,
    case
        when operator in ('>=', '>') then ppl
        when operator in ('<=', '<') then ppu
        else least(ppl, ppu)
    end as ppk,
    {{ run_id() }} as _run_id
from indices
