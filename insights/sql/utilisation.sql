-- Encounters of the report year (up to the report date) per 1,000 member-years, by encounter
-- class as the source states it (AMB, EMER, IMP, VR, ...). Exposure is whole member-months of
-- the report year up to the report date's month, as in members.sql.
WITH population AS (
  SELECT * FROM consenting_members WHERE {{member_filter}}
),
spans AS (
  SELECT
    p.*,
    CASE
      WHEN p.coverage_start IS NULL OR EXTRACT(YEAR FROM p.coverage_start) < {{report_year}} THEN 1
      WHEN EXTRACT(YEAR FROM p.coverage_start) > {{report_year}} THEN 13
      ELSE CAST(EXTRACT(MONTH FROM p.coverage_start) AS INTEGER)
    END AS first_month,
    CASE
      WHEN p.coverage_end IS NULL OR EXTRACT(YEAR FROM p.coverage_end) > {{report_year}} THEN 12
      WHEN EXTRACT(YEAR FROM p.coverage_end) < {{report_year}} THEN 0
      ELSE CAST(EXTRACT(MONTH FROM p.coverage_end) AS INTEGER)
    END AS last_month
  FROM population p
),
exposure AS (
  SELECT
    s.*,
    CASE
      WHEN s.first_month > s.last_month OR s.first_month > EXTRACT(MONTH FROM {{report_date}}) THEN 0
      WHEN s.last_month < EXTRACT(MONTH FROM {{report_date}}) THEN s.last_month - s.first_month + 1
      ELSE EXTRACT(MONTH FROM {{report_date}}) - s.first_month + 1
    END AS member_months
  FROM spans s
),
visits AS (
  SELECT e.patient_key, e.class, COUNT(*) AS encounters
  FROM current_encounters e
  WHERE EXTRACT(YEAR FROM e.start_date) = {{report_year}} AND e.start_date <= {{report_date}}
  GROUP BY e.patient_key, e.class
),
classes AS (
  SELECT DISTINCT class FROM visits
)
SELECT
  k.class AS encounter_class{{segment}},
  CAST(COALESCE(SUM(v.encounters), 0) AS BIGINT) AS encounters,
  COUNT(v.patient_key) AS members_with_encounter,
  COUNT(p.patient_key) AS members,
  CAST(COALESCE(SUM(p.member_months), 0) AS BIGINT) AS member_months,
  CAST(COALESCE(SUM(v.encounters), 0) AS DOUBLE) * 12000
    / CAST(NULLIF(SUM(p.member_months), 0) AS DOUBLE) AS encounters_per_1000_member_years
FROM classes k
CROSS JOIN exposure p
LEFT JOIN visits v ON v.patient_key = p.patient_key AND v.class = k.class
GROUP BY k.class{{segment}}
ORDER BY k.class;
