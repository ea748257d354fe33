//! [`LakeSql`]: the dashboards' SQL engine over the local Parquet lake, with DataFusion in
//! process (the same SQL runs on Athena over the same files in S3).

use async_trait::async_trait;
use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::DFParser;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use p360_insights::dashboards::{
    self, Cell, DashboardError, Filters, Published, ResultTable, SqlEngine, SqlError,
};
use p360_sink::lake::tables::Table;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The lake's tables as SQL tables: every [`Table`] over its directory, `<lake>/<table>/`.
pub struct LakeSql {
    lake: PathBuf,
    report_date: NaiveDate,
    runtime: Arc<RuntimeEnv>,
}

impl LakeSql {
    /// The lake at `lake_dir`; `report_date` is what [`LakeSql::publish`] reports on. Nothing
    /// is read yet: every query lists the files afresh, so rows written since (a withdrawal of
    /// consent) count from the next query on.
    pub fn open(lake_dir: &Path, report_date: NaiveDate) -> Result<Self, SqlError> {
        // DataFusion keeps file listings forever by default: a new consent_changes file would
        // go unseen. Parquet footers may stay cached (they are checked against the file's size
        // and modification time).
        let runtime = RuntimeEnvBuilder::new()
            .with_cache_manager(CacheManagerConfig::default().with_list_files_cache_limit(0))
            .build_arc()
            .map_err(sql_error)?;
        Ok(Self {
            lake: lake_dir.to_path_buf(),
            report_date,
            runtime,
        })
    }

    pub fn report_date(&self) -> NaiveDate {
        self.report_date
    }

    /// A dashboard on the report date, suppressed for publication.
    pub async fn publish(&self, id: &str, filters: &Filters) -> Result<Published, DashboardError> {
        dashboards::publish(self, id, filters, self.report_date).await
    }

    /// A fresh session per query: the views a script creates are its own, so concurrent
    /// queries with other report dates or filters cannot see each other's.
    fn session(&self) -> Result<SessionContext, SqlError> {
        let config = SessionConfig::new()
            .with_information_schema(false)
            .with_target_partitions(std::thread::available_parallelism().map_or(2, |n| n.get()));
        let ctx = SessionContext::new_with_config_rt(config, self.runtime.clone());
        for table in Table::ALL {
            let provider = self.provider(table)?;
            ctx.register_table(table.name(), provider)
                .map_err(sql_error)?;
        }
        Ok(ctx)
    }

    fn provider(&self, table: Table) -> Result<Arc<dyn TableProvider>, SqlError> {
        let schema = table.schema();
        let dir = self.lake.join(table.name());
        if !dir.is_dir() {
            // Nothing written yet: an empty table with the right columns.
            let empty = MemTable::try_new(schema, vec![vec![]]).map_err(sql_error)?;
            return Ok(Arc::new(empty));
        }
        let mut url = dir.to_string_lossy().into_owned();
        if !url.ends_with('/') {
            url.push('/'); // a directory: every Parquet file under it, partitions included
        }
        let url = ListingTableUrl::parse(&url).map_err(sql_error)?;
        let options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(schema);
        Ok(Arc::new(ListingTable::try_new(config).map_err(sql_error)?))
    }
}

#[async_trait]
impl SqlEngine for LakeSql {
    async fn query(&self, sql: &str) -> Result<ResultTable, SqlError> {
        let ctx = self.session()?;
        let statements =
            DFParser::parse_sql_with_dialect(sql, &GenericDialect {}).map_err(sql_error)?;
        let count = statements.len();
        let mut result = ResultTable::default();
        for (i, statement) in statements.into_iter().enumerate() {
            let state = ctx.state();
            let plan = state
                .statement_to_plan(statement)
                .await
                .map_err(sql_error)?;
            let frame = ctx.execute_logical_plan(plan).await.map_err(sql_error)?;
            if i + 1 == count {
                let columns = frame
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                let batches = frame.collect().await.map_err(sql_error)?;
                result = to_table(columns, &batches)?;
            } else {
                // CREATE VIEW: registered by planning and executing; nothing to read.
                frame.collect().await.map_err(sql_error)?;
            }
        }
        Ok(result)
    }
}

/// DataFusion's messages name SQL, columns and plans, not row values.
fn sql_error(e: impl std::fmt::Display) -> SqlError {
    SqlError(e.to_string())
}

fn to_table(columns: Vec<String>, batches: &[RecordBatch]) -> Result<ResultTable, SqlError> {
    let mut rows = Vec::new();
    for batch in batches {
        let cols = batch
            .columns()
            .iter()
            .map(|c| cells(c.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        for r in 0..batch.num_rows() {
            rows.push(cols.iter().map(|c| c[r].clone()).collect());
        }
    }
    Ok(ResultTable { columns, rows })
}

/// One column's values as cells: integers, floats and text; other types (dates) as text.
fn cells(array: &dyn Array) -> Result<Vec<Cell>, SqlError> {
    let dt = array.data_type();
    let target = if dt.is_integer() {
        DataType::Int64
    } else if dt.is_floating() || matches!(dt, DataType::Decimal128(..) | DataType::Decimal256(..))
    {
        DataType::Float64
    } else {
        DataType::Utf8
    };
    // Casting to Int64 fails on unsigned values above i64::MAX rather than wrapping.
    let cast_options = CastOptions {
        safe: false,
        ..Default::default()
    };
    let values = cast_with_options(array, &target, &cast_options).map_err(sql_error)?;
    let out = (0..values.len()).map(|i| {
        if values.is_null(i) {
            return Cell::Null;
        }
        match target {
            DataType::Int64 => Cell::Int(values.as_primitive::<Int64Type>().value(i)),
            DataType::Float64 => Cell::Float(values.as_primitive::<Float64Type>().value(i)),
            _ => Cell::Text(values.as_string::<i32>().value(i).to_owned()),
        }
    });
    Ok(out.collect())
}
