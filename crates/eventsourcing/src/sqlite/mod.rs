//! [`SqliteStore`]: the embedded durable store (being written).
