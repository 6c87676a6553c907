//! Token extraction from headers, cookies and query parameters.
