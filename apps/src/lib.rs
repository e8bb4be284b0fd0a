//! The reusable part of surge's apps: the report formats (`.hgrm`, `.hlog`, JSON, tables)
//! the PNG charts and a child-process guard, shared by the `surge` binary and `surge-bench compare`.

pub mod child;
pub mod report;
