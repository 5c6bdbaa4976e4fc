-- Grain: one row per batch x numeric critical quality attribute: the batch's reportable result (its latest
-- tested numeric result), numbered per product and attribute in batch start order (seq). Feeds SPC and Ppk.
-- Censored and pass/fail results are excluded (pass/fail assays are counted in the OOS rates, not charted).
-- moving_range = |x_i - x_(i-1)| and direction = sign(x_i - x_(i-1)), NULL on a series' first point.
with results as (
    select * from {{ ref('int_qc_results_specified') }}
    where is_cqa and result_type = 'numeric' and result_value is not null
),

reportable as (
    select
        *,
        row_number() over (
            partition by batch_id, attribute order by tested_at desc, sample_id desc
        ) as result_rank
    from results
),

ordered as (
    select
        r.product_code,
        r.attribute,
        r.batch_id,
        b.started_at as batch_started_at,
        r.sample_id,
        r.test_code,
        r.result_value as value,
        r.unit,
        r.spec_id,
        r.spec_version,
        r.operator,
        r.lsl,
        r.usl,
        r.conformance,
        row_number() over (
            partition by r.product_code, r.attribute order by b.started_at, r.batch_id
        ) as seq
    from reportable as r
    inner join {{ ref('batches') }} as b on r.batch_id = b.batch_id
    where r.result_rank = 1
),

previous as (
    select
        *,
        lag(value) over (partition by product_code, attribute order by seq) as previous_value
    from ordered
)

select
    * exclude (previous_value),
    abs(value - previous_value) as moving_range,
    case
        when previous_value is null then null
        when value > previous_value then 1
        when value < previous_value then -1
        else 0
    end as direction
from previous
