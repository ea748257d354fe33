-- Chronic conditions, CMS Chronic Conditions Warehouse style: members with at least one
-- current, active diagnosis in one of the condition's ICD-10-CM categories (first three
-- characters). The condition -> category list is data: {{ccw_categories}} is generated from
-- insights/sql/ccw.csv. Conditions overlap, so they add up to no total.
WITH population AS (
  SELECT * FROM consenting_members WHERE {{member_filter}}
),
ccw AS (
  SELECT * FROM (VALUES {{ccw_categories}}) AS t (condition, category3)
),
conditions AS (
  SELECT DISTINCT condition FROM ccw
),
member_conditions AS (
  SELECT DISTINCT c.patient_key, ccw.condition
  FROM current_conditions c
  JOIN ccw ON UPPER(SUBSTRING(c.code FROM 1 FOR 3)) = ccw.category3
  WHERE c.clinical_status = 'active'
    AND c.code_system = 'http://hl7.org/fhir/sid/icd-10-cm'
)
SELECT
  k.condition{{segment}},
  COUNT(mc.patient_key) AS members_with_condition,
  COUNT(p.patient_key) AS members,
  CAST(COUNT(mc.patient_key) AS DOUBLE) * 100
    / CAST(NULLIF(COUNT(p.patient_key), 0) AS DOUBLE) AS prevalence_pct
FROM conditions k
CROSS JOIN population p
LEFT JOIN member_conditions mc ON mc.patient_key = p.patient_key AND mc.condition = k.condition
GROUP BY k.condition{{segment}}
ORDER BY k.condition;
