//! Test support infrastructure shared by the integration tests: throwaway
//! PostgreSQL clusters (so every test runs on SQLite and on PostgreSQL).
pub mod dns;
pub mod mail;
pub mod postgres;
pub mod smtp;
