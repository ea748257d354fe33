-- Base views of the population dashboards: the lake's current state, for members whose latest
-- analytics choice opts in. Every dashboard reads these views, never the tables.
--
-- Portable SQL only (runs unchanged on DataFusion, DuckDB and Athena/Trino): CTEs, CASE,
-- COUNT, ROW_NUMBER() OVER, EXTRACT, CAST, COALESCE, SUBSTRING ... FROM ... FOR.
-- Placeholders, replaced by Rust with validated literals only:
--   {{report_date}}   a DATE literal (ages are taken on it)
--   {{report_year}}   an integer (the dashboards' calendar year)
--   {{member_filter}} a boolean condition on consenting_members' columns (TRUE for everyone)
--   {{segment}}       empty, or the member columns a dashboard is additionally grouped by when
--                     its cells are suppressed over every filter at once (alias p).
-- Ties on a timestamp are broken by change_id so that every engine picks the same row.

-- Members whose latest consent_changes row opts in (nobody without a row), with their latest
-- roster row and their age band on the report date.
CREATE VIEW consenting_members AS
WITH latest_consent AS (
  SELECT
    patient_key,
    population_analytics,
    ROW_NUMBER() OVER (PARTITION BY patient_key ORDER BY changed_at DESC, change_id DESC) AS rn
  FROM consent_changes
),
latest_member AS (
  SELECT
    patient_key, birth_date, sex, plan_id, region, coverage_start, coverage_end,
    ROW_NUMBER() OVER (PARTITION BY patient_key ORDER BY recorded_at DESC, change_id DESC) AS rn
  FROM members
),
aged AS (
  SELECT
    m.patient_key, m.birth_date, m.sex, m.plan_id, m.region, m.coverage_start, m.coverage_end,
    -- Completed years: one less when the birthday has not come yet in the report year.
    CAST(
      EXTRACT(YEAR FROM {{report_date}}) - EXTRACT(YEAR FROM m.birth_date)
      - CASE
          WHEN EXTRACT(MONTH FROM {{report_date}}) * 100 + EXTRACT(DAY FROM {{report_date}})
             < EXTRACT(MONTH FROM m.birth_date) * 100 + EXTRACT(DAY FROM m.birth_date)
          THEN 1 ELSE 0
        END
      AS INTEGER) AS age
  FROM latest_member m
  JOIN latest_consent c ON c.patient_key = m.patient_key
  WHERE m.rn = 1 AND c.rn = 1 AND c.population_analytics = TRUE
)
SELECT
  patient_key, birth_date, sex, plan_id, region, coverage_start, coverage_end, age,
  CASE
    WHEN age IS NULL THEN 'unknown'
    WHEN age < 18 THEN '0-17'
    WHEN age < 45 THEN '18-44'
    WHEN age < 65 THEN '45-64'
    WHEN age < 75 THEN '65-74'
    ELSE '75+'
  END AS age_band
FROM aged;

-- When facts were removed: the sink writes a removal to graph_changes only (a removed fact has
-- no state left to put in its typed table), so typed rows alone would keep it. A typed row
-- older than the fact's last removal is gone; one written after it (the fact came back) is not.
CREATE VIEW removed_facts AS
SELECT patient_key, fact_id, MAX(committed_at) AS removed_at
FROM graph_changes
WHERE change_kind = 'removed'
GROUP BY patient_key, fact_id;

-- The current_* views: the latest row per fact (ranking per fact keeps one copy of a change
-- delivered twice: repeated deliveries carry the same change_id and the same values), without
-- removed or entered-in-error facts, of consenting members only.
CREATE VIEW current_observations AS
WITH ranked AS (
  SELECT
    t.*,
    ROW_NUMBER() OVER (PARTITION BY t.patient_key, t.fact_id ORDER BY t.committed_at DESC, t.change_id DESC) AS rn
  FROM observations t
)
SELECT
  r.patient_key, r.fact_id, r.change_id, r.committed_at, r.status, r.code_system, r.code,
  r.display, r.kind, r.effective_date, r.value, r.unit, r.comparator, r.value_text,
  r.interpretation, r.reference_low, r.reference_high, r.source_count, r.source_kinds
FROM ranked r
JOIN consenting_members m ON m.patient_key = r.patient_key
LEFT JOIN removed_facts x ON x.patient_key = r.patient_key AND x.fact_id = r.fact_id
WHERE r.rn = 1 AND r.change_kind <> 'removed' AND r.status <> 'entered-in-error'
  AND (x.removed_at IS NULL OR x.removed_at < r.committed_at);

CREATE VIEW current_conditions AS
WITH ranked AS (
  SELECT
    t.*,
    ROW_NUMBER() OVER (PARTITION BY t.patient_key, t.fact_id ORDER BY t.committed_at DESC, t.change_id DESC) AS rn
  FROM conditions t
)
SELECT
  r.patient_key, r.fact_id, r.change_id, r.committed_at, r.status, r.code_system, r.code,
  r.display, r.clinical_status, r.onset_date, r.recorded_date, r.source_count, r.source_kinds
FROM ranked r
JOIN consenting_members m ON m.patient_key = r.patient_key
LEFT JOIN removed_facts x ON x.patient_key = r.patient_key AND x.fact_id = r.fact_id
WHERE r.rn = 1 AND r.change_kind <> 'removed' AND r.status <> 'entered-in-error'
  AND (x.removed_at IS NULL OR x.removed_at < r.committed_at);

CREATE VIEW current_medications AS
WITH ranked AS (
  SELECT
    t.*,
    ROW_NUMBER() OVER (PARTITION BY t.patient_key, t.fact_id ORDER BY t.committed_at DESC, t.change_id DESC) AS rn
  FROM medications t
)
SELECT
  r.patient_key, r.fact_id, r.change_id, r.committed_at, r.status, r.code_system, r.code,
  r.display, r.medication_text, r.strength, r.form, r.dosage, r.medication_status,
  r.start_date, r.end_date, r.source_count, r.source_kinds
FROM ranked r
JOIN consenting_members m ON m.patient_key = r.patient_key
LEFT JOIN removed_facts x ON x.patient_key = r.patient_key AND x.fact_id = r.fact_id
WHERE r.rn = 1 AND r.change_kind <> 'removed' AND r.status <> 'entered-in-error'
  AND (x.removed_at IS NULL OR x.removed_at < r.committed_at);

CREATE VIEW current_encounters AS
WITH ranked AS (
  SELECT
    t.*,
    ROW_NUMBER() OVER (PARTITION BY t.patient_key, t.fact_id ORDER BY t.committed_at DESC, t.change_id DESC) AS rn
  FROM encounters t
)
SELECT
  r.patient_key, r.fact_id, r.change_id, r.committed_at, r.status, r.code_system, r.code,
  r.display, r.class, r.start_date, r.end_date, r.reason_code, r.source_count, r.source_kinds
FROM ranked r
JOIN consenting_members m ON m.patient_key = r.patient_key
LEFT JOIN removed_facts x ON x.patient_key = r.patient_key AND x.fact_id = r.fact_id
WHERE r.rn = 1 AND r.change_kind <> 'removed' AND r.status <> 'entered-in-error'
  AND (x.removed_at IS NULL OR x.removed_at < r.committed_at);

CREATE VIEW current_procedures AS
WITH ranked AS (
  SELECT
    t.*,
    ROW_NUMBER() OVER (PARTITION BY t.patient_key, t.fact_id ORDER BY t.committed_at DESC, t.change_id DESC) AS rn
  FROM procedures t
)
SELECT
  r.patient_key, r.fact_id, r.change_id, r.committed_at, r.status, r.code_system, r.code,
  r.display, r.performed_date, r.source_count, r.source_kinds
FROM ranked r
JOIN consenting_members m ON m.patient_key = r.patient_key
LEFT JOIN removed_facts x ON x.patient_key = r.patient_key AND x.fact_id = r.fact_id
WHERE r.rn = 1 AND r.change_kind <> 'removed' AND r.status <> 'entered-in-error'
  AND (x.removed_at IS NULL OR x.removed_at < r.committed_at);

CREATE VIEW current_immunizations AS
WITH ranked AS (
  SELECT
    t.*,
    ROW_NUMBER() OVER (PARTITION BY t.patient_key, t.fact_id ORDER BY t.committed_at DESC, t.change_id DESC) AS rn
  FROM immunizations t
)
SELECT
  r.patient_key, r.fact_id, r.change_id, r.committed_at, r.status, r.code_system, r.code,
  r.display, r.occurred_date, r.source_count, r.source_kinds
FROM ranked r
JOIN consenting_members m ON m.patient_key = r.patient_key
LEFT JOIN removed_facts x ON x.patient_key = r.patient_key AND x.fact_id = r.fact_id
WHERE r.rn = 1 AND r.change_kind <> 'removed' AND r.status <> 'entered-in-error'
  AND (x.removed_at IS NULL OR x.removed_at < r.committed_at);

-- The latest result per member, measure and measurement period (a new year's first
-- computation must not hide the last one of the year before), of consenting members only.
CREATE VIEW current_care_gaps AS
WITH ranked AS (
  SELECT
    t.*,
    ROW_NUMBER() OVER (
      PARTITION BY t.patient_key, t.measure_id, t.period_end
      ORDER BY t.computed_at DESC, t.change_id DESC
    ) AS rn
  FROM care_gaps t
)
SELECT
  r.patient_key, r.measure_id, r.measure_version, r.period_start, r.period_end, r.status,
  r.computed_at, r.evidence_date, r.evidence_value, r.exclusion_reason
FROM ranked r
JOIN consenting_members m ON m.patient_key = r.patient_key
WHERE r.rn = 1;
