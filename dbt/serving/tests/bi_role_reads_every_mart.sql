-- Fails with one row per table or view in the marts schema the read-only BI account cannot SELECT, or when it
-- could write to one (PostgreSQL, and only when var('bi_role') names the account).
{{ config(enabled=target.type == 'postgres' and var('bi_role', none) is not none) }}
select c.relname, c.relkind
from pg_class as c
inner join pg_namespace as n on c.relnamespace = n.oid
where n.nspname = '{{ target.schema }}'
  and c.relkind in ('r', 'v', 'm', 'p')
  and (
    not has_table_privilege('{{ var("bi_role") }}', c.oid, 'SELECT')
    or has_table_privilege('{{ var("bi_role") }}', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
  )
