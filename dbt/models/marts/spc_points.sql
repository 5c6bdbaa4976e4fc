-- Grain: one row per product x numeric CQA x batch: one point of the individuals chart with its limits, z score
-- and Nelson rule flags. A rule flags the point that completes its pattern, looking back over the series in
-- batch order. Window functions only (standard SQL, the same in DuckDB and PostgreSQL):
--   rule 1: the point is more than 3 sigma from the centre
--   rule 2: 9 points in a row on the same side of the centre
--   rule 3: 6 points in a row steadily increasing or decreasing (5 successive rises or falls)
--   rule 5: 2 of 3 points in a row more than 2 sigma from the centre, same side
--   rule 6: 4 of 5 points in a row more than 1 sigma from the centre, same side
--   rule 7: 15 points in a row within 1 sigma of the centre (either side)
with points as (
    select
        o.*,
        l.centre,
        l.sigma,
        l.ucl,
        l.lcl,
        o.seq <= l.baseline_points as in_baseline,
        (o.value - l.centre) / nullif(l.sigma, 0) as z
    from {{ ref('int_cqa_observations') }} as o
    inner join {{ ref('int_spc_limits') }} as l
        on o.product_code = l.product_code and o.attribute = l.attribute
),

windows as (
    select
        *,
        {{ points_in_last(9) }} as n_last9,
        {{ points_in_last(9, 'z > 0') }} as above_last9,
        {{ points_in_last(9, 'z < 0') }} as below_last9,
        {{ points_in_last(5, 'direction is not null') }} as n_directions_last5,
        {{ points_in_last(5, 'direction = 1') }} as rises_last5,
        {{ points_in_last(5, 'direction = -1') }} as falls_last5,
        {{ points_in_last(3) }} as n_last3,
        {{ points_in_last(3, 'z > 2') }} as above2_last3,
        {{ points_in_last(3, 'z < -2') }} as below2_last3,
        {{ points_in_last(5) }} as n_last5,
        {{ points_in_last(5, 'z > 1') }} as above1_last5,
        {{ points_in_last(5, 'z < -1') }} as below1_last5,
        {{ points_in_last(15) }} as n_last15,
        {{ points_in_last(15, 'abs(z) < 1') }} as within1_last15
    from points
),

flagged as (
    select
        *,
        coalesce(abs(z) > 3, false) as rule_1,
        coalesce(n_last9 = 9 and (above_last9 = 9 or below_last9 = 9), false) as rule_2,
        coalesce(n_directions_last5 = 5 and (rises_last5 = 5 or falls_last5 = 5), false) as rule_3,
        coalesce(n_last3 = 3 and (above2_last3 >= 2 or below2_last3 >= 2), false) as rule_5,
        coalesce(n_last5 = 5 and (above1_last5 >= 4 or below1_last5 >= 4), false) as rule_6,
        coalesce(n_last15 = 15 and within1_last15 = 15, false) as rule_7
    from windows
)

select
    product_code,
    attribute,
    batch_id,
    batch_started_at,
    seq,
    sample_id,
    value,
    unit,
    moving_range,
    in_baseline,
    centre,
    sigma,
    ucl,
    lcl,
    z,
    rule_1,
    rule_2,
    rule_3,
    rule_5,
    rule_6,
    rule_7,
    (rule_1 or rule_2 or rule_3 or rule_5 or rule_6 or rule_7) as any_rule,
    {{ run_id() }} as _run_id
from flagged
