#!/usr/bin/env bash
# The full test run: formatting, lints (default and all features), every test of every crate
# including the AWS adapters against a local moto server, and the kill -9 crash test.
# This is what CI runs (`.ci/run` calls it). Usage: scripts/test.sh [--quick]
#   --quick   skip the AWS tier and the crash test (no network install, ~1 min warm)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/p360-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Tesseract's OpenMP: one thread per OCR engine (libgomp reads this when it loads; the p360
# binary sets it for itself, test processes need it from here).
export OMP_THREAD_LIMIT=1
quick=false
[ "${1:-}" = "--quick" ] && quick=true

step() { printf '\n== %s\n' "$*"; }

step "format"
cargo fmt --all -- --check

if $quick; then
  step "clippy (default features)"
  cargo clippy --workspace --all-targets --locked -- -D warnings
  step "tests (default features)"
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
  else
    cargo test --workspace --locked --no-fail-fast
  fi
  exit 0
fi

# Every full-run step builds the same package set with the same features (--workspace
# --all-features): a different set re-resolves build-dependency features and recompiles
# RocksDB's C++ (~16 min on 2 cores).
step "clippy (all features: aws, lambda)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "infra template lint (cfn-lint)"
venv="${P360_CACHE:-$HOME/.cache/p360}/cfn-lint-venv"
if [ ! -x "$venv/bin/cfn-lint" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'cfn-lint>=1,<2'
fi
"$venv/bin/cfn-lint" infra/template.yaml infra/lake-tables.yaml

step "independent readers: FHIR R4 validator (PyPI fhir.resources 6.1), DuckDB for the lake, OpenAPI validator"
fhir_venv="${P360_CACHE:-$HOME/.cache/p360}/fhir-venv"
if [ ! -x "$fhir_venv/bin/python" ] || ! "$fhir_venv/bin/python" -c 'import fhir.resources, duckdb, openapi_spec_validator' 2>/dev/null; then
  python3 -m venv "$fhir_venv"
  "$fhir_venv/bin/pip" install --quiet --disable-pip-version-check 'fhir.resources==6.1.0' 'pydantic>=1.7,<2' 'duckdb>=1.1,<2' \
    'openapi-spec-validator>=0.7,<0.8'
fi
export P360_FHIR_PYTHON="$fhir_venv/bin/python"
export P360_LAKE_PYTHON="$fhir_venv/bin/python"

step "moto server (AWS-compatible endpoint on 127.0.0.1)"
endpoint=$(scripts/moto.sh start)
trap 'scripts/moto.sh stop; scripts/virtuoso.sh stop; scripts/fhir-server.sh stop' EXIT
echo "moto at $endpoint"
export P360_TEST_AWS_ENDPOINT="$endpoint"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true

step "Virtuoso (independent SPARQL 1.1 server on 127.0.0.1)"
P360_TEST_SPARQL_ENDPOINT=$(scripts/virtuoso.sh start)
export P360_TEST_SPARQL_ENDPOINT
echo "virtuoso at $P360_TEST_SPARQL_ENDPOINT"

step "Helios FHIR Server (independent FHIR R4 server on 127.0.0.1; built once, ~10 min cold)"
P360_TEST_FHIR_BASE=$(scripts/fhir-server.sh start)
export P360_TEST_FHIR_BASE
echo "FHIR server at $P360_TEST_FHIR_BASE"

step "tests (all features, AWS adapters against moto, FHIR validator)"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --locked --no-fail-fast --run-ignored all
else
  cargo test --workspace --all-features --locked --no-fail-fast -- --include-ignored
fi

step "crash test: kill -9 during 2,000 documents and two payor feed batches, 10 restarts"
# The binary the tests built: one feature set for every step, so RocksDB (C++) compiles once.
scripts/crash-test.sh --events 2000 --crashes 10 --bin "$CARGO_TARGET_DIR/debug/p360"
