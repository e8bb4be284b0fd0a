//! The reusable part of surge's apps: the report formats (`.hgrm`, `.hlog`, JSON, tables)
//! and the PNG charts, shared by the `surge` binary and `surge-bench compare`.

pub mod report;
