-- Quality measures of the report year: members by their current status per measure.
-- denominator = met + gap; numerator = met (for an inverse measure such as cms122 the engine's
-- "met" is the good outcome, e.g. HbA1c controlled); open_gaps = gap. Members a measure does
-- not apply to (not_applicable) are in none of the columns.
WITH population AS (
  SELECT * FROM consenting_members WHERE {{member_filter}}
),
gaps AS (
  SELECT g.patient_key, g.measure_id, g.status
  FROM current_care_gaps g
  WHERE EXTRACT(YEAR FROM g.period_end) = {{report_year}}
),
measures AS (
  SELECT DISTINCT measure_id FROM gaps
)
SELECT
  k.measure_id{{segment}},
  COUNT(CASE WHEN g.status IN ('met', 'gap') THEN 1 END) AS denominator,
  COUNT(CASE WHEN g.status = 'met' THEN 1 END) AS numerator,
  CAST(COUNT(CASE WHEN g.status = 'met' THEN 1 END) AS DOUBLE) * 100
    / CAST(NULLIF(COUNT(CASE WHEN g.status IN ('met', 'gap') THEN 1 END), 0) AS DOUBLE)
    AS performance_pct,
  COUNT(CASE WHEN g.status = 'excluded' THEN 1 END) AS exclusions,
  COUNT(CASE WHEN g.status = 'insufficient_data' THEN 1 END) AS insufficient_data,
  COUNT(CASE WHEN g.status = 'gap' THEN 1 END) AS open_gaps
FROM measures k
CROSS JOIN population p
LEFT JOIN gaps g ON g.patient_key = p.patient_key AND g.measure_id = k.measure_id
GROUP BY k.measure_id{{segment}}
ORDER BY k.measure_id;
