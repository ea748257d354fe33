-- Members and member-months of the report year, by month up to the report date's month.
--   members            enrolled on any day of the month (each is one member-month)
--   member_months_ytd  member-months from January through the month
--   new_members        coverage starting in the month
WITH population AS (
  SELECT * FROM consenting_members WHERE {{member_filter}}
),
months AS (
  SELECT * FROM (VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9), (10), (11), (12)) AS t (month)
  WHERE month <= EXTRACT(MONTH FROM {{report_date}})
),
-- Months of the report year covered, as month numbers: 1..12, 13 when coverage starts later,
-- 0 when it ended earlier. Whole months: a member enrolled on any day counts for the month.
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
)
SELECT
  mo.month{{segment}},
  COUNT(CASE WHEN p.first_month <= mo.month AND mo.month <= p.last_month THEN 1 END) AS members,
  CAST(COALESCE(SUM(
    CASE
      WHEN p.first_month > mo.month OR p.first_month > p.last_month THEN 0
      WHEN p.last_month < mo.month THEN p.last_month - p.first_month + 1
      ELSE mo.month - p.first_month + 1
    END), 0) AS BIGINT) AS member_months_ytd,
  COUNT(
    CASE
      WHEN EXTRACT(YEAR FROM p.coverage_start) = {{report_year}}
       AND EXTRACT(MONTH FROM p.coverage_start) = mo.month
      THEN 1
    END) AS new_members
FROM months mo
CROSS JOIN spans p
GROUP BY mo.month{{segment}}
ORDER BY mo.month;
