-- Fails with one row per index the dashboards rely on that is missing (PostgreSQL only).
{{ config(enabled=target.type == 'postgres') }}
{%- set expected = [] %}
{%- for table, columns in dashboard_index_list() %}
  {%- do expected.append(dashboard_index_name(table, columns)) %}
{%- endfor %}
select wanted.indexname
from (values {% for name in expected %}('{{ name }}'){% if not loop.last %}, {% endif %}{% endfor %})
    as wanted (indexname)
where not exists (
    select 1 from pg_indexes as i
    where i.schemaname = '{{ target.schema }}' and i.indexname = wanted.indexname
)
