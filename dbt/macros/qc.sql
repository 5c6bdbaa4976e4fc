{% macro qc_conformance(value, text, censor_direction, censor_bound) -%}
  {#- Conformance of one QC result to its specification row (columns result_type, operator, lsl, usl,
      pass_text in scope). Returns 'pass', 'oos', 'indeterminate' (a censored value whose bound does not decide
      it), 'no_result' or 'no_spec'. Operators: >=, >, <=, <, between (inclusive), == (pass/fail text). -#}
  case
    when spec_id is null then 'no_spec'
    when result_type = 'pass_fail' then
      case
        when nullif(trim({{ text }}), '') is null then 'no_result'
        when lower(trim({{ text }})) = lower(trim(pass_text)) then 'pass'
        else 'oos'
      end
    when {{ value }} is not null then
      case
        when operator = '>=' and {{ value }} >= lsl then 'pass'
        when operator = '>' and {{ value }} > lsl then 'pass'
        when operator = '<=' and {{ value }} <= usl then 'pass'
        when operator = '<' and {{ value }} < usl then 'pass'
        when operator = 'between' and {{ value }} between lsl and usl then 'pass'
        else 'oos'
      end
    when {{ censor_direction }} = '<' and {{ censor_bound }} is not null then
      -- true value < bound
      case
        when operator in ('<=', '<') and {{ censor_bound }} <= usl then 'pass'
        when operator in ('>=', '>', 'between') and {{ censor_bound }} <= lsl then 'oos'
        else 'indeterminate'
      end
    when {{ censor_direction }} = '>' and {{ censor_bound }} is not null then
      -- true value > bound
      case
        when operator in ('>=', '>') and {{ censor_bound }} >= lsl then 'pass'
        when operator in ('<=', '<', 'between') and {{ censor_bound }} >= usl then 'oos'
        else 'indeterminate'
      end
    else 'no_result'
  end
{%- endmacro %}
