{#- Project macros shared by the layers. -#}

{% macro run_id() -%}
  {#- The pipeline run id stamped on every curated and mart row (`_run_id`). A build without it is refused so
      no row can exist that the run ledger cannot explain. -#}
  {%- set value = var('run_id', none) -%}
  {%- if execute and (value is none or value | string | trim == '') -%}
    {{ exceptions.raise_compiler_error("var 'run_id' is required: build through pipelines.transform.build()") }}
  {%- endif -%}
  '{{ value }}'
{%- endmacro %}


{% macro landing(system, entity) -%}
  {#- The validated landing Parquet of one feed (LAKE/landing/<system>__<entity>/*.parquet). The source() call
      records the dependency for lineage; the path is rendered at run time from var('lake_root') so one parsed
      manifest serves local and S3 lakes. Each feed directory holds a zero-row _schema.parquet, so the glob
      never comes up empty. -#}
  {%- set _ = source(system, entity) -%}
  {%- set root = var('lake_root', none) -%}
  {%- if execute and root is none -%}
    {{ exceptions.raise_compiler_error("var 'lake_root' is required: build through pipelines.transform.build()") }}
  {%- endif -%}
  read_parquet('{{ root }}/landing/{{ system }}__{{ entity }}/*.parquet', union_by_name = true)
{%- endmacro %}


{% macro lineage_columns() -%}
  {#- The per-row lineage ingest appends (pipelines.sources.LINEAGE_COLUMNS), typed. -#}
  cast(_source_sha256 as varchar) as _source_sha256,
  cast(_source_file as varchar) as _source_file,
  cast(_source_row as bigint) as _source_row,
  cast(_ingest_run_id as varchar) as _ingest_run_id,
  cast(_ingested_at as timestamptz) as _ingested_at,
  cast(_dq_flags as varchar) as _dq_flags
{%- endmacro %}


{% macro latest_per_key(relation, key, single_file_groups=none) -%}
  {#- One row per key: the most recently ingested version (a later export of the same record supersedes the
      earlier one; the earlier stays in the landing Parquet and raw zone, nothing is updated in place). Ties on
      ingest time fall back to file name and row number, so the choice is deterministic.

      single_file_groups (columns that are part of the key, e.g. batch_id, equipment_id for bioreactor
      readings): a fast path for big feeds. Rows of a group that came from one source file only cannot have a
      newer version elsewhere, so they pass through without the window (3x faster on 5.8 M readings); only
      groups fed by several files are ranked. Duplicates inside one file are rejected by validation, and the
      key test on the curated table fails the build if any got through. -#}
  {%- if single_file_groups -%}
  {%- set groups = single_file_groups | join(', ') -%}
  with file_counts as (
    select {{ groups }}, count(distinct _source_sha256) as source_files
    from {{ relation }}
    group by {{ groups }}
  ),

  single_file as (
    select r.* from {{ relation }} as r
    semi join (select * from file_counts where source_files = 1) as f using ({{ groups }})
  ),

  multi_file as (
    select r.* from {{ relation }} as r
    semi join (select * from file_counts where source_files > 1) as f using ({{ groups }})
  )

  select * from single_file
  union all by name
  {{ _latest_version('multi_file', key) }}
  {%- else -%}
  {{ _latest_version(relation, key) }}
  {%- endif -%}
{%- endmacro %}


{% macro _latest_version(relation, key) -%}
  select * exclude (_version_rank)
  from (
    select
      *,
      row_number() over (
        partition by {{ key | join(', ') }}
        order by _ingested_at desc, _source_file desc, _source_row desc
      ) as _version_rank
    from {{ relation }}
  )
  where _version_rank = 1
{%- endmacro %}


{% macro generate_schema_name(custom_schema_name, node) -%}
  {#- Schemas are named exactly as configured (staging, curated, marts, ...), not prefixed with the target's. -#}
  {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}


{% macro process_step_names() -%}
  {#- The MES step names in process order (pipelines/sources.py, mes__process_steps.step_name). -#}
  {{ return(['apheresis_receipt', 'selection', 'activation', 'transduction', 'expansion', 'harvest',
             'formulation', 'cryopreservation', 'qc_release']) }}
{%- endmacro %}


{% macro hours_between(start, end) -%}
  (epoch({{ end }}) - epoch({{ start }})) / 3600.0
{%- endmacro %}
