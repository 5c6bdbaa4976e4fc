-- Grain: one row per product x numeric CQA: the XmR control limits and the baseline they come from.
select
    *,
    {{ var('spc_baseline_batches') }} as baseline_window_batches,
    {{ run_id() }} as _run_id
from {{ ref('int_spc_limits') }}
