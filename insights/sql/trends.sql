-- Activity of the report year by month up to the report date: encounters, members with an
-- encounter, and new conditions (current diagnoses whose onset, else recorded day, falls in the
-- month).
WITH population AS (
  SELECT * FROM consenting_members WHERE {{member_filter}}
),
months AS (
  SELECT * FROM (VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9), (10), (11), (12)) AS t (month)
  WHERE month <= EXTRACT(MONTH FROM {{report_date}})
),
events AS (
  SELECT e.patient_key, CAST(EXTRACT(MONTH FROM e.start_date) AS INTEGER) AS month,
         1 AS encounter, 0 AS new_condition
  FROM current_encounters e
  WHERE EXTRACT(YEAR FROM e.start_date) = {{report_year}} AND e.start_date <= {{report_date}}
  UNION ALL
  SELECT c.patient_key, CAST(EXTRACT(MONTH FROM COALESCE(c.onset_date, c.recorded_date)) AS INTEGER),
         0, 1
  FROM current_conditions c
  WHERE EXTRACT(YEAR FROM COALESCE(c.onset_date, c.recorded_date)) = {{report_year}}
    AND COALESCE(c.onset_date, c.recorded_date) <= {{report_date}}
),
per_member AS (
  SELECT patient_key, month, SUM(encounter) AS encounters, SUM(new_condition) AS new_conditions
  FROM events
  GROUP BY patient_key, month
)
SELECT
  mo.month{{segment}},
  CAST(COALESCE(SUM(a.encounters), 0) AS BIGINT) AS encounters,
  COUNT(CASE WHEN a.encounters > 0 THEN 1 END) AS members_with_encounter,
  CAST(COALESCE(SUM(a.new_conditions), 0) AS BIGINT) AS new_conditions
FROM months mo
CROSS JOIN population p
LEFT JOIN per_member a ON a.patient_key = p.patient_key AND a.month = mo.month
GROUP BY mo.month{{segment}}
ORDER BY mo.month;
