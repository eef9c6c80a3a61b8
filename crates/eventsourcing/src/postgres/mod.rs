//! [`PostgresStore`]: the PostgreSQL store (being written).
