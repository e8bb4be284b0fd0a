//! Connection, listen and bind tables.
