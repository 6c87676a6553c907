//! What the filter writes: claim headers, 401 (`WWW-Authenticate`) and 403 responses.
