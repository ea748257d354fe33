//! The payor's population dashboards over the lake: [`LakeSql`] runs the dashboards' SQL
//! (`p360_insights::dashboards`) on the Parquet files with DataFusion in process;
//! [`population`] makes a realistic synthetic population to test and benchmark them with.

pub mod lake;
pub mod population;

pub use lake::LakeSql;

use datafusion::arrow::datatypes::DataType;
use p360_sink::lake::tables::Table;

/// Every lake table's columns with DuckDB's type names, for readers that must create a table
/// no file exists for yet (`scripts/insights/duckdb_dashboards.py`).
pub fn duckdb_schema() -> Result<serde_json::Value, String> {
    let mut out = serde_json::Map::new();
    for t in Table::ALL {
        let columns = t
            .schema()
            .fields()
            .iter()
            .map(|f| {
                let ty = match f.data_type() {
                    DataType::Utf8 => "VARCHAR",
                    DataType::Float64 => "DOUBLE",
                    DataType::Int32 => "INTEGER",
                    DataType::Int64 => "BIGINT",
                    DataType::UInt32 => "UINTEGER",
                    DataType::UInt64 => "UBIGINT",
                    DataType::Boolean => "BOOLEAN",
                    DataType::Date32 => "DATE",
                    DataType::Timestamp(_, Some(_)) => "TIMESTAMPTZ",
                    DataType::Timestamp(_, None) => "TIMESTAMP",
                    other => {
                        return Err(format!(
                            "{}.{}: no DuckDB type for {other}",
                            t.name(),
                            f.name()
                        ));
                    }
                };
                Ok(serde_json::json!([f.name(), ty]))
            })
            .collect::<Result<Vec<_>, String>>()?;
        out.insert(t.name().to_owned(), serde_json::Value::Array(columns));
    }
    Ok(serde_json::Value::Object(out))
}
