//! Placeholder for sqlx's SQLite driver: see this crate's Cargo.toml.
compile_error!(
    "sqlx's SQLite driver is replaced by a placeholder in this workspace \
     (benches/sqlx-sqlite-disabled): flowbed's SQLite store links rusqlite's libsqlite3-sys, \
     which cannot share a build with sqlx's"
);
