//! jabmon hub: the query engine (`query`), and later the hub bot.
pub mod query;
