{#- Rows whose combination of `columns` is not unique (the key test for multi-column keys).

    rows_of_this_run: test only the rows this run wrote (`_run_id`). For incremental models whose key contains
    their replace_groups: a run rewrites whole groups, so only its own rows can break the key; after
    --full-refresh every row is this run's and the whole table is tested (ADR 0141). -#}
{% test unique_combination(model, columns, rows_of_this_run=false) %}
select {{ columns | join(', ') }}, count(*) as occurrences
from {{ model }}
{%- if rows_of_this_run %}
where _run_id = {{ run_id() }}
{%- endif %}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
