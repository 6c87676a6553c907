//! meshguard-e2e (placeholder: filled in by its issue).
