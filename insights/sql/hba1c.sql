-- HbA1c control of members with a current, active diabetes diagnosis (ICD-10-CM E10, E11,
-- E13): their latest HbA1c (LOINC 4548-4, 17856-6) of the report year up to the report date,
-- in bands. Same-day results: the lowest counts (as in CMS122). mmol/mol (IFCC) results are
-- converted to % (NGSP) with the master equation. The bands add up to the diabetic members.
WITH population AS (
  SELECT * FROM consenting_members WHERE {{member_filter}}
),
diabetics AS (
  SELECT DISTINCT c.patient_key
  FROM current_conditions c
  WHERE c.clinical_status = 'active'
    AND c.code_system = 'http://hl7.org/fhir/sid/icd-10-cm'
    AND UPPER(SUBSTRING(c.code FROM 1 FOR 3)) IN ('E10', 'E11', 'E13')
),
results AS (
  SELECT
    o.patient_key,
    CASE WHEN o.unit = 'mmol/mol' THEN o.value * 0.09148 + 2.152 ELSE o.value END AS percent,
    ROW_NUMBER() OVER (
      PARTITION BY o.patient_key
      ORDER BY o.effective_date DESC,
               CASE WHEN o.unit = 'mmol/mol' THEN o.value * 0.09148 + 2.152 ELSE o.value END ASC,
               o.fact_id ASC
    ) AS rn
  FROM current_observations o
  WHERE o.code_system = 'http://loinc.org'
    AND o.code IN ('4548-4', '17856-6')
    AND o.value IS NOT NULL
    AND EXTRACT(YEAR FROM o.effective_date) = {{report_year}}
    AND o.effective_date <= {{report_date}}
),
bands AS (
  SELECT * FROM (VALUES (1, '<7'), (2, '7-8'), (3, '8-9'), (4, '>9'), (5, 'no result'))
    AS t (band_order, hba1c_band)
),
banded AS (
  SELECT
    p.*,
    CASE
      WHEN l.percent IS NULL THEN 5
      WHEN l.percent < 7 THEN 1
      WHEN l.percent < 8 THEN 2
      WHEN l.percent <= 9 THEN 3
      ELSE 4
    END AS band_order
  FROM population p
  JOIN diabetics d ON d.patient_key = p.patient_key
  LEFT JOIN results l ON l.patient_key = p.patient_key AND l.rn = 1
)
SELECT
  b.hba1c_band{{segment}},
  COUNT(p.patient_key) AS members
FROM bands b
LEFT JOIN banded p ON p.band_order = b.band_order
GROUP BY b.band_order, b.hba1c_band{{segment}}
ORDER BY b.band_order;
