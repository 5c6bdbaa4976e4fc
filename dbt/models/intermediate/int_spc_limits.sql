-- Grain: one row per product x numeric CQA: individuals (XmR) chart limits from the baseline window, the first
-- var('spc_baseline_batches') batches of the series. centre = mean of the baseline values; sigma = mean moving
-- range of the baseline / d2 (1.128 for n = 2); limits = centre +/- 3 sigma (docs/transform.md).
select
    product_code,
    attribute,
    count(*) as baseline_points,
    min(batch_started_at) as baseline_from,
    max(batch_started_at) as baseline_to,
    avg(value) as centre,
    avg(moving_range) as mr_bar,
    avg(moving_range) / 1.128 as sigma,
    avg(value) + 3 * avg(moving_range) / 1.128 as ucl,
    avg(value) - 3 * avg(moving_range) / 1.128 as lcl,
    3.267 * avg(moving_range) as mr_ucl
from {{ ref('int_cqa_observations') }}
where seq <= {{ var('spc_baseline_batches') }}
group by product_code, attribute
