-- Grain: one row per batch that has process steps: step durations (hours), cell counts and derived yields.
with steps as (
    select * from {{ ref('process_steps') }}
)

select
    batch_id,
    count(*) as n_steps,
    min(started_at) as first_step_started_at,
    max(ended_at) as last_step_ended_at,
    {%- for step in process_step_names() %}
    sum(case when step_name = '{{ step }}' then {{ hours_between('started_at', 'ended_at') }} end)
        as {{ step }}_hours,
    {%- endfor %}
    max(case when step_name = 'selection' then viable_cells_in end) as selection_cells_in,
    max(case when step_name = 'selection' then viable_cells_out end) as selection_cells_out,
    max(case when step_name = 'expansion' then viable_cells_in end) as expansion_cells_in,
    max(case when step_name = 'expansion' then viable_cells_out end) as expansion_cells_out,
    max(case when step_name = 'harvest' then viable_cells_out end) as harvest_cells_out,
    -- The product: viable cells out of the last step that reports them (formulation or cryopreservation).
    arg_max(viable_cells_out, step_seq) filter (where viable_cells_out is not null) as final_viable_cells
from steps
group by batch_id
